import type { Span } from '../api';
import { minNs, offsetNs } from '../layout/time';
import { visibleRows, type Node, type TreeSpan } from '../layout/tree';
import type { WfRow } from '../components/waterfall';

export interface ViewSpan extends TreeSpan {
  s: Span;
}

/** Spans with their times as offsets from the earliest start. */
export function prepare(spans: Span[]): { base: bigint; spans: ViewSpan[]; end: number } {
  const base = minNs(spans.map((s) => s.start_unix_nano));
  let end = 0;
  const out = spans.map((s) => {
    const start = offsetNs(s.start_unix_nano, base);
    const e = Math.max(start, offsetNs(s.end_unix_nano, base));
    if (e > end) end = e;
    return { span_id: s.span_id, parent_span_id: s.parent_span_id, start, end: e, s };
  });
  return { base, spans: out, end };
}

/** The span filter: words that must all appear in the service, the name,
 * the span id or an attribute (key or value); `key=value` matches that
 * attribute exactly. */
export function spanFilter(text: string): ((s: ViewSpan) => boolean) | undefined {
  const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) return undefined;
  return ({ s }) =>
    terms.every((term) => {
      const eq = term.indexOf('=');
      if (eq > 0) {
        const key = term.slice(0, eq);
        const value = term.slice(eq + 1);
        const all = { ...s.resource, ...s.attributes, 'service.name': s.service_name, name: s.name, 'status.code': s.status.code, kind: s.kind };
        return Object.entries(all).some(([k, v]) => k.toLowerCase() === key && (v ?? '').toLowerCase() === value);
      }
      if (s.service_name.toLowerCase().includes(term) || s.name.toLowerCase().includes(term) || s.span_id.startsWith(term)) return true;
      if (term === 'error' && s.status.code === 'ERROR') return true;
      if (term === 'cold' && s.cold_start) return true;
      return Object.entries(s.attributes).some(([k, v]) => k.toLowerCase().includes(term) || (v ?? '').toLowerCase().includes(term));
    });
}

/** Who links to whom: `trace:span` of a link's target → the spans that
 * carry the link. */
export function linkedFrom(spans: Span[]): Map<string, Span[]> {
  const out = new Map<string, Span[]>();
  for (const s of spans) {
    for (const l of s.links) {
      const key = `${l.trace_id}:${l.span_id}`;
      const list = out.get(key);
      if (list) list.push(s);
      else out.set(key, [s]);
    }
  }
  return out;
}

export function zoomParam(raw: string): [number, number] {
  const m = /^([\d.]+)-([\d.]+)$/.exec(raw);
  if (!m) return [0, 1];
  const a = Math.max(0, Math.min(1, Number(m[1])));
  const b = Math.max(0, Math.min(1, Number(m[2])));
  return b > a ? [a, b] : [0, 1];
}

/** A waterfall's span rows for the trees under `roots`. */
export function spanRows(roots: Node<ViewSpan>[], collapsed: ReadonlySet<string>, filter?: (s: ViewSpan) => boolean): WfRow[] {
  return visibleRows(roots, collapsed, filter).map(({ node, depth }) => ({
    kind: 'span',
    id: node.key,
    span: node.span.s,
    start: node.span.start,
    end: node.span.end,
    depth,
    descendants: node.descendants,
    collapsed: collapsed.has(node.key),
    missingParent: node.missingParent,
  }));
}
