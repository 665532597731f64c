import { Graph, layout } from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { api, type Edge } from '../api';
import { Chart } from '../components/charts';
import { Badge, Empty, ErrorBox, Link, TimeRange, rangeKey, rangeParams, useFetch } from '../components/common';
import { platformName, platformVar } from '../layout/colors';
import { formatDuration } from '../layout/time';
import { param, setParams } from '../router';

interface MapNode {
  id: string;
  kind: 'service' | 'queue';
  label: string;
  platform?: string;
  cloudPlatform?: string | null;
  x: number;
  y: number;
  width: number;
  height: number;
}

interface MapEdge {
  id: string;
  from: string;
  to: string;
  async: boolean;
  count: number;
  p95: number;
  flagged: number;
  /** The report edges behind it (a queue's inbound side sums several). */
  edges: Edge[];
  points: { x: number; y: number }[];
  label: string;
}

export function edgeKey(e: Edge): string {
  return [e.producer_service, e.system ?? '', e.destination ?? '', e.consumer_service].join('|');
}

function queueId(e: Edge): string {
  return `q:${e.system ?? ''}:${e.destination ?? ''}`;
}

/** Lays out services and queues left to right (dagre). An asynchronous
 * edge goes through its queue or topic node; a synchronous one goes
 * straight from caller to callee. */
export function buildMap(edges: Edge[], services: { name: string; platform: string; cloud_platform?: string | null }[], minutes: number) {
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 90, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const info = new Map(services.map((s) => [s.name, s]));
  const nodes = new Map<string, Omit<MapNode, 'x' | 'y'>>();
  const addService = (name: string) => {
    if (nodes.has(`s:${name}`)) return;
    const s = info.get(name);
    nodes.set(`s:${name}`, { id: `s:${name}`, kind: 'service', label: name, platform: s?.platform, cloudPlatform: s?.cloud_platform, width: Math.max(110, name.length * 7.5 + 30), height: 40 });
  };
  for (const s of services) addService(s.name);
  const merged = new Map<string, Omit<MapEdge, 'points' | 'label'>>();
  const addEdge = (from: string, to: string, async: boolean, e: Edge) => {
    const id = `${from}->${to}`;
    const m = merged.get(id);
    if (m) {
      m.count += e.count;
      m.p95 = Math.max(m.p95, e.p95_ns);
      m.flagged += e.flagged;
      m.edges.push(e);
    } else merged.set(id, { id, from, to, async, count: e.count, p95: e.p95_ns, flagged: e.flagged, edges: [e] });
  };
  for (const e of edges) {
    addService(e.producer_service);
    addService(e.consumer_service);
    if (e.kind === 'async' && (e.destination || e.system)) {
      const q = queueId(e);
      const label = `${e.system ?? ''} ${e.destination ?? ''}`.trim();
      if (!nodes.has(q)) nodes.set(q, { id: q, kind: 'queue', label, width: Math.max(110, label.length * 7 + 30), height: 34 });
      addEdge(`s:${e.producer_service}`, q, true, e);
      addEdge(q, `s:${e.consumer_service}`, true, e);
    } else addEdge(`s:${e.producer_service}`, `s:${e.consumer_service}`, e.kind === 'async', e);
  }
  for (const n of nodes.values()) g.setNode(n.id, { width: n.width, height: n.height });
  const labelled = [...merged.values()].map((m) => {
    // Into a queue: the rate; out of it (or a call): rate, p95 and flagged.
    const rate = `${(m.count / Math.max(minutes, 1)).toFixed(m.count / minutes < 10 ? 1 : 0)}/min`;
    const intoQueue = m.to.startsWith('q:');
    const label = intoQueue ? rate : `${rate} · p95 ${formatDuration(m.p95)}${m.flagged ? ` · ${m.flagged} flagged` : ''}`;
    g.setEdge(m.from, m.to, { width: label.length * 6.2, height: 14, labelpos: 'c' }, m.id);
    return { ...m, label };
  });
  layout(g);
  const placed: MapNode[] = [...nodes.values()].map((n) => {
    const p = g.node(n.id);
    return { ...n, x: p.x, y: p.y };
  });
  const placedEdges: MapEdge[] = labelled.map((m) => ({ ...m, points: (g.edge({ v: m.from, w: m.to, name: m.id }) as { points: { x: number; y: number }[] }).points }));
  const graph = g.graph();
  return { nodes: placed, edges: placedEdges, width: graph.width ?? 600, height: graph.height ?? 400 };
}

function path(points: { x: number; y: number }[]): string {
  if (!points.length) return '';
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const mid = { x: (points[i].x + points[i + 1].x) / 2, y: (points[i].y + points[i + 1].y) / 2 };
    d += ` Q${points[i].x},${points[i].y} ${mid.x},${mid.y}`;
  }
  const last = points[points.length - 1];
  return d + ` L${last.x},${last.y}`;
}

function NodeShape({ n }: { n: MapNode }) {
  const x = n.x - n.width / 2;
  const y = n.y - n.height / 2;
  if (n.kind === 'queue') {
    return (
      <>
        <rect x={x} y={y} width={n.width} height={n.height} rx={n.height / 2} style={{ fill: 'var(--wait-bg)', stroke: 'var(--wait)' }} />
        <text x={n.x} y={n.y + 4} text-anchor="middle">
          {n.label}
        </text>
      </>
    );
  }
  const color = platformVar(n.platform ?? '', n.cloudPlatform);
  const fn = n.platform === 'faas';
  return (
    <>
      <rect x={x} y={y} width={n.width} height={n.height} rx={fn ? 2 : 8} style={{ fill: 'var(--bg)', stroke: color, strokeDasharray: fn ? '4 2' : undefined }} />
      <rect x={x} y={y} width={5} height={n.height} style={{ fill: color, stroke: 'none' }} />
      <text x={n.x + 2} y={n.y - 2} text-anchor="middle" style={{ fontWeight: 600 }}>
        {n.label}
      </text>
      <text x={n.x + 2} y={n.y + 12} text-anchor="middle" style={{ fill: 'var(--fg2)', fontSize: '10.5px' }}>
        {n.platform ? platformName(n.platform, n.cloudPlatform) : ''}
      </text>
    </>
  );
}

function ServicePanel({ name }: { name: string }) {
  const ops = useFetch(`ops ${name} ${rangeKey()}`, (s) => api.operations(name, rangeParams(), s));
  const cold = useFetch(`cold ${rangeKey()}`, (s) => api.coldStarts(rangeParams(), s));
  const fn = cold.data?.functions.find((f) => f.function === name);
  return (
    <div data-testid="node-panel">
      <h2>{name}</h2>
      <Link href={`/search?service=${encodeURIComponent(name)}`}>Search its traces →</Link>
      {fn && (
        <>
          <div class="section-title">Cold starts</div>
          <div>
            {fn.cold_starts} of {fn.invocations} invocations ({(fn.rate * 100).toFixed(1)}%), init p50 {fn.init_p50_ns != null ? formatDuration(fn.init_p50_ns) : '–'}, cold p50{' '}
            {fn.cold_p50_ns != null ? formatDuration(fn.cold_p50_ns) : '–'} vs warm {fn.warm_p50_ns != null ? formatDuration(fn.warm_p50_ns) : '–'}
          </div>
          <Link href={`/search?service=${encodeURIComponent(name)}&cold_start=1`}>Traces with a cold start →</Link>
        </>
      )}
      <div class="section-title">Operations</div>
      {ops.error && <ErrorBox error={ops.error} />}
      <table>
        <tbody>
          {ops.data?.operations.map((o) => (
            <tr>
              <td>
                <Link href={`/search?service=${encodeURIComponent(name)}&operation=${encodeURIComponent(o.name)}`}>{o.name}</Link>
              </td>
              <td class="muted">{o.kind}</td>
              <td class="num">{o.spans}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function EdgePanel({ edge }: { edge: MapEdge }) {
  const e = edge.edges[0];
  const q = rangeParams();
  q.set('producer_service', e.producer_service);
  q.set('consumer_service', e.consumer_service);
  if (e.system) q.set('system', e.system);
  if (e.destination) q.set('destination', e.destination);
  const detail = useFetch(edge.edges.length === 1 ? `edge ${edge.id} ${rangeKey()}` : null, (s) => api.edge(q, s));
  const hist = detail.data?.buckets ?? [];
  const x = useMemo(() => hist.map((_, i) => i), [hist]);
  const series = useMemo(() => [{ label: 'messages', values: hist.map((b) => b.count), color: 'wait' as const, bars: true }], [hist]);
  return (
    <div data-testid="edge-panel">
      <h2>
        {e.producer_service} → {edge.to.startsWith('q:') ? `${e.system ?? ''} ${e.destination ?? ''}` : e.consumer_service}
      </h2>
      <table>
        <tbody>
          {edge.edges.map((x) => (
            <tr>
              <td>
                {x.producer_service} → {x.consumer_service}
              </td>
              <td class="num">{x.count}</td>
              <td>p50 {formatDuration(x.p50_ns)}</td>
              <td>p95 {formatDuration(x.p95_ns)}</td>
              <td>{x.flagged > 0 && <Badge kind="flagged">{x.flagged} flagged</Badge>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {edge.edges.length > 1 && <div class="muted">Select an edge out of the queue for its dwell histogram.</div>}
      {detail.error && <ErrorBox error={detail.error} />}
      {hist.length > 0 && (
        <>
          <div class="section-title">Dwell (time in the queue or call)</div>
          <Chart x={x} series={series} height={150} xLabel={(i) => (hist[i] ? `≤${formatDuration(hist[i].le_ns)}` : '')} testid="edge-histogram" />
        </>
      )}
      {detail.data && detail.data.slowest.length > 0 && (
        <>
          <div class="section-title">Slowest flows</div>
          <table data-testid="edge-examples">
            <tbody>
              {detail.data.slowest.map((b) => (
                <tr>
                  <td>
                    <Link href={`/flows/${b.consumer_trace_id}?span=${b.consumer_span_id}`}>{formatDuration(b.latency_ns)}</Link>
                  </td>
                  <td class="muted">{new Date(Number(BigInt(b.consumer_time) / 1_000_000n)).toLocaleTimeString()}</td>
                  <td>{b.flagged && <Badge kind="flagged">flagged</Badge>}</td>
                  <td class="mono">{b.consumer_trace_id.slice(0, 12)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

/** Services and the queues between them, laid out as a graph. */
export function MapView() {
  const key = `map ${rangeKey()}`;
  const edges = useFetch(key, (s) => api.boundaries(rangeParams(), s));
  const services = useFetch(`services ${key}`, (s) => api.services(rangeParams(), s));
  const range = rangeParams();
  const minutes = ((range.get('end') ? Date.parse(range.get('end')!) : Date.now()) - Date.parse(range.get('start')!)) / 60e3;
  const map = useMemo(() => (edges.data && services.data ? buildMap(edges.data.edges, services.data.services, minutes) : null), [edges.data, services.data]);
  const selectedNode = param('node');
  const selectedEdge = param('edge');
  const edge = map?.edges.find((e) => e.id === selectedEdge);
  return (
    <div class="page map">
      <div class="toolbar">
        <b>Map</b>
        <span class="legend">
          <span><span class="swatch" style={{ background: 'var(--k8s)' }} />Kubernetes</span>
          <span><span class="swatch" style={{ background: 'var(--lambda)' }} />Lambda</span>
          <span><span class="swatch" style={{ background: 'var(--cloud_run)' }} />Cloud Run</span>
          <span><span class="swatch" style={{ background: 'var(--azure_functions)' }} />Azure Functions</span>
          <span><span class="swatch" style={{ background: 'var(--wait)' }} />queue or topic</span>
        </span>
        <span class="grow" />
        <TimeRange />
      </div>
      {(edges.error || services.error) && <ErrorBox error={(edges.error ?? services.error)!} />}
      {map && map.nodes.length === 0 && <Empty>No services in this time range.</Empty>}
      {map && map.nodes.length > 0 && (
        <div class="split">
          <div class="grow card" style={{ overflow: 'auto' }}>
            <svg viewBox={`0 0 ${map.width} ${map.height}`} style={{ maxHeight: '75vh', minWidth: Math.min(map.width, 900) }} data-testid="map">
              <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                  <path d="M0,0 L10,5 L0,10 z" style={{ fill: 'var(--fg2)' }} />
                </marker>
              </defs>
              {map.edges.map((e) => {
                const mid = e.points[Math.floor(e.points.length / 2)];
                return (
                  <g class={`edge${e.async ? ' async' : ''}${e.flagged ? ' flagged' : ''}${e.id === selectedEdge ? ' selected' : ''}`} onClick={() => setParams({ edge: e.id, node: null })} data-testid="map-edge" data-edge={e.id}>
                    <path d={path(e.points)} marker-end="url(#arrow)" />
                    <path d={path(e.points)} style={{ stroke: 'transparent', strokeWidth: 12 }} />
                    {mid && (
                      <text x={mid.x} y={mid.y - 4} text-anchor="middle">
                        {e.label}
                      </text>
                    )}
                  </g>
                );
              })}
              {map.nodes.map((n) => (
                <g class={`node${n.id === selectedNode ? ' selected' : ''}`} onClick={() => setParams({ node: n.id, edge: null })} data-testid="map-node" data-node={n.id} data-kind={n.kind}>
                  <NodeShape n={n} />
                </g>
              ))}
            </svg>
          </div>
          {(selectedNode || edge) && (
            <div class="detail card" style={{ width: 440 }}>
              {selectedNode.startsWith('s:') && <ServicePanel name={selectedNode.slice(2)} />}
              {selectedNode.startsWith('q:') && (
                <div data-testid="node-panel">
                  <h2>{map.nodes.find((n) => n.id === selectedNode)?.label}</h2>
                  {map.edges
                    .filter((e) => e.from === selectedNode || e.to === selectedNode)
                    .map((e) => (
                      <div>
                        <a href="#" onClick={(ev) => { ev.preventDefault(); setParams({ edge: e.id, node: null }); }}>
                          {e.from.replace(/^[sq]:/, '')} → {e.to.replace(/^[sq]:/, '')}
                        </a>{' '}
                        <span class="muted">{e.label}</span>
                      </div>
                    ))}
                </div>
              )}
              {edge && <EdgePanel edge={edge} />}
            </div>
          )}
        </div>
      )}
    </div>
  );
}
