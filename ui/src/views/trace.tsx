import { useCallback, useMemo } from 'preact/hooks';
import { api } from '../api';
import { Badge, Empty, ErrorBox, Link, useFetch } from '../components/common';
import { SpanDetail, type SpanRef } from '../components/spandetail';
import { Waterfall, type WfRow } from '../components/waterfall';
import { CriticalToggle, SpanFilter, showCritical, useCollapsed } from '../components/wftools';
import { criticalPath, type PathSegment, type PathSpan } from '../layout/critical';
import { timeScale } from '../layout/scale';
import { formatDuration } from '../layout/time';
import { buildTree, parents, type Node } from '../layout/tree';
import { navigate, param, setParams } from '../router';
import { linkedFrom, prepare, spanFilter, spanRows, zoomParam, type ViewSpan } from './spans';

export function toPath(roots: Node<ViewSpan>[]): PathSpan[] {
  const convert = (n: Node<ViewSpan>): PathSpan => ({ id: n.span.span_id, start: n.span.start, end: n.span.end, children: n.children.map(convert) });
  return roots.map(convert);
}

export function bySpan(segments: PathSegment[]): Map<string, PathSegment[]> {
  const out = new Map<string, PathSegment[]>();
  for (const s of segments) {
    const list = out.get(s.id);
    if (list) list.push(s);
    else out.set(s.id, [s]);
  }
  return out;
}

export function TraceView({ traceId }: { traceId: string }) {
  const trace = useFetch(`trace ${traceId}`, (s) => api.trace(traceId, s));
  const flow = useFetch(`flowinfo ${traceId}`, (s) => api.flowInfo(traceId, s));

  const prepared = useMemo(() => (trace.data ? prepare(trace.data.spans) : null), [trace.data]);
  const roots = useMemo(() => (prepared ? buildTree(prepared.spans) : []), [prepared]);
  const { collapsed, toggle } = useCollapsed();
  const filterText = param('filter');
  const rows = useMemo((): WfRow[] => {
    const filter = spanFilter(filterText);
    return spanRows(roots, collapsed, filter);
  }, [roots, collapsed, filterText]);
  const critical = useMemo(() => (showCritical() ? bySpan(criticalPath(toPath(roots))) : undefined), [roots, showCritical()]);
  const zoom = zoomParam(param('zoom'));
  const end = prepared?.end ?? 1;
  const scale = useCallback(
    (width: number) => {
      const from = zoom[0] * end;
      const to = zoom[1] * end;
      return timeScale([], [from, Math.max(to, from + 1)], width, { linear: true, zero: 0 });
    },
    [end, zoom[0], zoom[1]],
  );
  const minimapRows = useMemo(() => rows.map((r) => ({ start: r.start, end: r.end, service: r.kind === 'span' ? r.span.service_name : '' })), [rows]);
  const links = useMemo(() => linkedFrom(trace.data?.spans ?? []), [trace.data]);

  if (trace.error) return <div class="page"><ErrorBox error={trace.error} /></div>;
  if (!trace.data || !prepared) return <Empty>Loading trace {traceId}…</Empty>;

  const spans = trace.data.spans;
  const root = roots[0]?.span.s;
  const selectedId = param('span') || null;
  const selected = selectedId ? spans.find((s) => s.span_id === selectedId) : undefined;
  const services = [...new Set(spans.map((s) => s.service_name))];
  const errors = spans.filter((s) => s.status.code === 'ERROR').length;
  const colds = spans.filter((s) => s.cold_start).length;
  const flowTraces = flow.data?.trace_ids.length ?? 1;
  const inView = (r: SpanRef) => r.trace_id === traceId && spans.some((s) => s.span_id === r.span_id);
  const open = (r: SpanRef) => {
    if (inView(r)) setParams({ span: r.span_id });
    else navigate(`/traces/${r.trace_id}?span=${r.span_id}`);
  };
  return (
    <div class="wf">
      <div class="wf-head">
        <h1 data-testid="trace-title">
          {root ? `${root.service_name}: ${root.name}` : traceId}
        </h1>
        <div class="facts">
          <span class="mono">{traceId}</span>
          <span>
            started <b>{new Date(Number(prepared.base / 1_000_000n)).toLocaleString()}</b>
          </span>
          <span>
            duration <b>{formatDuration(end)}</b>
          </span>
          <span>
            <b>{spans.length}</b> spans
          </span>
          <span>
            <b>{services.length}</b> services
          </span>
          {errors > 0 && <Badge kind="error">{errors} errors</Badge>}
          {colds > 0 && <Badge kind="cold">{colds} cold starts</Badge>}
          {flowTraces > 1 && (
            <Link href={`/flows/${traceId}`} data-testid="flow-link">
              part of a flow of {flowTraces} traces →
            </Link>
          )}
        </div>
        <div class="toolbar" style={{ marginTop: 6, marginBottom: 0 }}>
          <SpanFilter />
          {filterText && <span class="muted">{rows.length} of {spans.length} spans</span>}
          <button onClick={() => setParams({ collapsed: parents(roots).join(',') })}>Collapse all</button>
          <button onClick={() => setParams({ collapsed: null })}>Expand all</button>
          <CriticalToggle />
          {(zoom[0] > 0 || zoom[1] < 1) && <button onClick={() => setParams({ zoom: null })}>Reset zoom</button>}
          <span class="grow" />
          <span class="legend muted">j/k move · enter collapse · / filter · drag the minimap to zoom</span>
        </div>
      </div>
      <div class="wf-body">
        <Waterfall
          rows={rows}
          scale={scale}
          onToggle={toggle}
          critical={critical}
          minimap={{
            rows: minimapRows,
            range: [0, end],
            zoom,
            onZoom: (z) => setParams({ zoom: z ? `${z[0].toFixed(4)}-${z[1].toFixed(4)}` : null }),
          }}
        />
        {selected && (
          <SpanDetail
            span={selected}
            base={prepared.base}
            links={links}
            boundaries={flow.data?.boundaries ?? []}
            open={open}
            inView={inView}
          />
        )}
      </div>
    </div>
  );
}
