import { useCallback, useMemo } from 'preact/hooks';
import { api, type Boundary, type Span } from '../api';
import { Badge, Empty, ErrorBox, Link, useFetch } from '../components/common';
import { SpanDetail, type SpanRef } from '../components/spandetail';
import { Waterfall, type HopView, type WfRow } from '../components/waterfall';
import { CriticalToggle, SpanFilter, showCritical, useCollapsed } from '../components/wftools';
import { serviceColor } from '../layout/colors';
import { criticalPath, type PathSpan } from '../layout/critical';
import { timeScale } from '../layout/scale';
import { formatDuration, offsetNs } from '../layout/time';
import { buildTree, type Node } from '../layout/tree';
import { navigate, param, setParams } from '../router';
import { linkedFrom, prepare, spanFilter, spanRows, type ViewSpan } from './spans';
import { bySpan } from './trace';

interface TraceGroup {
  traceId: string;
  roots: Node<ViewSpan>[];
  start: number;
  end: number;
  spans: number;
  services: string[];
  errors: number;
  colds: number;
}

/** The flow's critical path: every trace's span tree, with each consumer
 * span hung under the producer span whose message it received, so the
 * path follows messages from trace to trace. */
function flowPath(groups: TraceGroup[], boundaries: Boundary[]): PathSpan[] {
  const nodes = new Map<string, PathSpan>();
  const convert = (n: Node<ViewSpan>): PathSpan => {
    const p: PathSpan = { id: n.span.span_id, start: n.span.start, end: n.span.end, children: n.children.map(convert) };
    nodes.set(`${n.span.s.trace_id}:${n.span.span_id}`, p);
    return p;
  };
  const roots = groups.flatMap((g) => g.roots.map(convert));
  const adopted = new Set<PathSpan>();
  for (const b of [...boundaries].sort((x, y) => x.latency_ns - y.latency_ns)) {
    const producer = nodes.get(`${b.producer_trace_id}:${b.producer_span_id}`);
    const consumer = nodes.get(`${b.consumer_trace_id}:${b.consumer_span_id}`);
    if (!producer || !consumer || producer === consumer) continue;
    // The trace root the consumer belongs to moves under the producer,
    // once: a batch consumer's trace hangs under one of its producers.
    const consumerRoot = roots.find((r) => r === consumer || contains(r, consumer));
    if (!consumerRoot || adopted.has(consumerRoot) || contains(consumerRoot, producer)) continue;
    producer.children.push(consumerRoot);
    adopted.add(consumerRoot);
  }
  return roots.filter((r) => !adopted.has(r));
}

function contains(root: PathSpan, target: PathSpan): boolean {
  const stack = [root];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === target) return true;
    stack.push(...n.children);
  }
  return false;
}

export function FlowView({ traceId }: { traceId: string }) {
  const flow = useFetch(`flow ${traceId}`, (s) => api.flow(traceId, s));
  const prepared = useMemo(() => (flow.data ? prepare(flow.data.spans) : null), [flow.data]);
  const groups = useMemo((): TraceGroup[] => {
    if (!prepared) return [];
    const byTrace = new Map<string, ViewSpan[]>();
    for (const s of prepared.spans) {
      const list = byTrace.get(s.s.trace_id);
      if (list) list.push(s);
      else byTrace.set(s.s.trace_id, [s]);
    }
    return [...byTrace.entries()]
      .map(([id, spans]) => ({
        traceId: id,
        roots: buildTree(spans),
        start: Math.min(...spans.map((s) => s.start)),
        end: Math.max(...spans.map((s) => s.end)),
        spans: spans.length,
        services: [...new Set(spans.map((s) => s.s.service_name))],
        errors: spans.filter((s) => s.s.status.code === 'ERROR').length,
        colds: spans.filter((s) => s.s.cold_start).length,
      }))
      .sort((a, b) => a.start - b.start || a.traceId.localeCompare(b.traceId));
  }, [prepared]);
  const { collapsed, toggle } = useCollapsed();
  const filterText = param('filter');
  const rows = useMemo((): WfRow[] => {
    const filter = spanFilter(filterText);
    const out: WfRow[] = [];
    groups.forEach((g, i) => {
      const headerId = `t:${g.traceId}`;
      const folded = collapsed.has(headerId);
      out.push({
        kind: 'header',
        id: headerId,
        traceId: g.traceId,
        start: g.start,
        end: g.end,
        collapsed: folded,
        title: (
          <>
            <span>Trace {i + 1}</span>
            <span class="swatch" style={{ background: serviceColor(g.roots[0]?.span.s.service_name ?? '') }} />
            <span>{g.roots[0] ? `${g.roots[0].span.s.service_name}: ${g.roots[0].span.s.name}` : g.traceId}</span>
            <span class="muted">
              {g.spans} spans · {formatDuration(g.end - g.start)} · starts +{formatDuration(g.start)}
            </span>
            {g.colds > 0 && <Badge kind="cold">cold start</Badge>}
            {g.errors > 0 && <Badge kind="error">{g.errors} errors</Badge>}
            <Link href={`/traces/${g.traceId}`} class="mono" title="Open this trace alone" stopPropagation>
              {g.traceId.slice(0, 12)}…
            </Link>
          </>
        ),
      });
      if (folded) return;
      for (const row of spanRows(g.roots, collapsed, filter)) out.push(row);
    });
    return out;
  }, [groups, collapsed, filterText]);
  const hops = useMemo((): HopView[] => {
    if (!flow.data || !prepared) return [];
    return flow.data.boundaries.map((b) => ({ boundary: b, sent: offsetNs(b.producer_time, prepared.base), received: offsetNs(b.consumer_time, prepared.base) }));
  }, [flow.data, prepared]);
  const critical = useMemo(() => (showCritical() && flow.data ? bySpan(criticalPath(flowPath(groups, flow.data.boundaries))) : undefined), [groups, showCritical()]);
  const end = prepared?.end ?? 1;
  const linear = param('gaps') === 'linear';
  const scale = useCallback(
    (width: number) =>
      timeScale(
        (prepared?.spans ?? []).map((s) => [s.start, s.end] as [number, number]),
        [0, Math.max(end, 1)],
        width,
        { linear },
      ),
    [prepared, end, linear],
  );
  const links = useMemo(() => linkedFrom(flow.data?.spans ?? []), [flow.data]);

  if (flow.error) return <div class="page"><ErrorBox error={flow.error} /></div>;
  if (!flow.data || !prepared) return <Empty>Loading the flow of {traceId}…</Empty>;

  const f = flow.data;
  const spanIndex = new Map(f.spans.map((s) => [`${s.trace_id}:${s.span_id}`, s]));
  const selectedId = param('span') || null;
  const selected: Span | undefined = selectedId ? f.spans.find((s) => s.span_id === selectedId) : undefined;
  const services = [...new Set(f.spans.map((s) => s.service_name))];
  const flagged = f.boundaries.filter((b) => b.flagged).length;
  const colds = f.spans.filter((s) => s.cold_start).length;
  const errors = f.spans.filter((s) => s.status.code === 'ERROR').length;
  const skewed = f.boundaries.filter((b) => b.clock_skew).length;
  const inView = (r: SpanRef) => spanIndex.has(`${r.trace_id}:${r.span_id}`);
  const open = (r: SpanRef) => {
    if (inView(r)) {
      if (collapsed.has(`t:${r.trace_id}`)) {
        const next = new Set(collapsed);
        next.delete(`t:${r.trace_id}`);
        setParams({ span: r.span_id, collapsed: [...next].join(',') });
      } else setParams({ span: r.span_id });
    } else navigate(`/traces/${r.trace_id}?span=${r.span_id}`);
  };
  // Unconsumed producer spans and consumers with no producer, as the
  // spans themselves say (messaging operation) against the boundaries.
  const producers = new Set(f.boundaries.map((b) => `${b.producer_trace_id}:${b.producer_span_id}`));
  const consumers = new Set(f.boundaries.map((b) => `${b.consumer_trace_id}:${b.consumer_span_id}`));
  const unconsumed = f.spans.filter((s) => s.kind === 'producer' && !producers.has(`${s.trace_id}:${s.span_id}`));
  const orphaned = f.spans.filter((s) => s.kind === 'consumer' && !consumers.has(`${s.trace_id}:${s.span_id}`) && !s.parent_span_id);
  const unconsumedKeys = new Set(unconsumed.map((s) => `${s.trace_id}:${s.span_id}`));
  const orphanKeys = new Set(orphaned.map((s) => `${s.trace_id}:${s.span_id}`));
  return (
    <div class="wf">
      <div class="wf-head">
        <h1 data-testid="flow-title">
          Flow of {f.trace_ids.length} traces
        </h1>
        <div class="facts">
          <span class="mono">{f.flow_id}</span>
          <span>
            started <b>{new Date(Number(prepared.base / 1_000_000n)).toLocaleString()}</b>
          </span>
          <span>
            end to end <b>{formatDuration(end)}</b>
          </span>
          <span>
            <b>{f.spans.length}</b> spans
          </span>
          <span>
            <b>{f.boundaries.length}</b> hops
          </span>
          <span>
            <b>{services.length}</b> services
          </span>
          {flagged > 0 && <Badge kind="flagged">{flagged} flagged</Badge>}
          {colds > 0 && <Badge kind="cold">{colds} cold starts</Badge>}
          {errors > 0 && <Badge kind="error">{errors} errors</Badge>}
          {skewed > 0 && <Badge kind="skew" title="The consumer's clock is behind the producer's">{skewed} clock skew</Badge>}
          {unconsumed.length > 0 && <Badge kind="orphan" title={unconsumed.map((s) => `${s.service_name}: ${s.name}`).join('\n')}>{unconsumed.length} unconsumed</Badge>}
          {orphaned.length > 0 && <Badge kind="orphan" title={orphaned.map((s) => `${s.service_name}: ${s.name}`).join('\n')}>{orphaned.length} orphan consumers</Badge>}
        </div>
        <div class="toolbar" style={{ marginTop: 6, marginBottom: 0 }}>
          <SpanFilter />
          <button onClick={() => setParams({ collapsed: groups.map((g) => `t:${g.traceId}`).join(',') })}>Collapse traces</button>
          <button onClick={() => setParams({ collapsed: null })}>Expand all</button>
          <CriticalToggle />
          <label title="Draw long idle waits to scale instead of as a break">
            <input type="checkbox" checked={linear} onChange={(e) => setParams({ gaps: e.currentTarget.checked ? 'linear' : null })} />
            waits to scale
          </label>
          <span class="grow" />
          <span class="legend">
            <span><span class="swatch" style={{ background: 'var(--wait)' }} />queue dwell</span>
            <span><span class="swatch" style={{ background: 'var(--flagged)' }} />flagged hop</span>
            <span><span class="swatch" style={{ background: 'var(--cold)' }} />cold-start init</span>
          </span>
        </div>
      </div>
      <div class="wf-body">
        <Waterfall
          rows={rows}
          scale={scale}
          onToggle={toggle}
          critical={critical}
          hops={hops}
          fallbackRow={(_span, trace) => `t:${trace}`}
          onHop={(b) => setParams({ span: b.consumer_span_id })}
          mark={(s) => {
            const key = `${s.trace_id}:${s.span_id}`;
            if (unconsumedKeys.has(key)) return { text: 'no consumer seen', title: 'A message this span sent that no consumer in the flow received (yet): the orphans table says once the correlation window has passed' };
            if (orphanKeys.has(key)) return { text: 'no producer seen', title: 'A consumer whose producer is not in the flow: propagation may be broken (see the orphans table)' };
            return undefined;
          }}
        />
        {selected && (
          <SpanDetail
            span={selected}
            base={prepared.base}
            links={links}
            boundaries={f.boundaries}
            open={open}
            inView={inView}
          />
        )}
      </div>
    </div>
  );
}
