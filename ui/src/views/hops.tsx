import { api, type Edge } from '../api';
import { Badge, Empty, ErrorBox, Link, SortHeader, TimeRange, rangeKey, rangeParams, sortRows, useFetch } from '../components/common';
import { formatDuration } from '../layout/time';
import { param } from '../router';

const SORTS: Record<string, (e: Edge) => number | string> = {
  edge: (e) => `${e.producer_service} ${e.destination ?? ''} ${e.consumer_service}`,
  count: (e) => e.count,
  p50: (e) => e.p50_ns,
  p95: (e) => e.p95_ns,
  p99: (e) => e.p99_ns,
  max: (e) => e.max_ns,
  flagged: (e) => e.flagged,
  redeliveries: (e) => e.redeliveries,
  skew: (e) => e.clock_skew,
};

function Orphans() {
  const q = rangeParams();
  q.set('limit', '200');
  const found = useFetch(`orphans ${rangeKey()}`, (s) => api.orphans(q, s));
  const list = found.data?.orphans ?? [];
  return (
    <>
      <div class="section-title">Orphans and unconsumed messages</div>
      {found.error && <ErrorBox error={found.error} />}
      {found.data && list.length === 0 && <Empty>None in this time range: every consumer found its producer, every message its consumer.</Empty>}
      {list.length > 0 && (
        <table class="grid" data-testid="orphans">
          <thead>
            <tr>
              <th>Kind</th>
              <th>Service</th>
              <th>System</th>
              <th>Destination</th>
              <th>Correlation</th>
              <th>Time</th>
              <th>Trace</th>
            </tr>
          </thead>
          <tbody>
            {list.map((o) => (
              <tr data-testid="orphan-row">
                <td>
                  <Badge kind="orphan" title={o.kind === 'orphan' ? 'A consumer whose producer was never seen: propagation is broken' : 'A message no consumer received within the window'}>
                    {o.kind}
                  </Badge>
                </td>
                <td>{o.service_name}</td>
                <td>{o.system ?? '–'}</td>
                <td>{o.destination ?? '–'}</td>
                <td class="mono">{o.correlation_key ? `${o.correlation_key}=${o.correlation_value ?? ''}` : '–'}</td>
                <td>{new Date(Number(BigInt(o.time_unix_nano) / 1_000_000n)).toLocaleTimeString()}</td>
                <td>
                  <Link href={`/traces/${o.trace_id}?span=${o.span_id}`} class="mono">
                    {o.trace_id.slice(0, 12)}…
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function edgeSearch(e: Edge): string {
  return `/search?service=${encodeURIComponent(e.consumer_service)}${e.flagged ? '&flagged=1' : ''}&sort=duration`;
}

/** Per edge: how many messages, how long they waited, how many were
 * flagged, redelivered or arrived with skewed clocks. */
export function HopsView() {
  const key = `hops ${rangeKey()}`;
  const report = useFetch(key, (s) => api.boundaries(rangeParams(), s));
  const sort = param('sort') || 'p95';
  const desc = param('asc') !== '1';
  const edges = sortRows(report.data?.edges ?? [], SORTS[sort] ?? SORTS.p95, desc);
  return (
    <div class="page">
      <div class="toolbar">
        <b>Hops</b>
        <span class="muted">every producer → consumer edge that crossed a queue, a bus or a call</span>
        <span class="grow" />
        <TimeRange />
      </div>
      {report.error && <ErrorBox error={report.error} />}
      {report.data && edges.length === 0 && <Empty>No boundaries in this time range.</Empty>}
      {edges.length > 0 && (
        <table class="grid" data-testid="hops">
          <thead>
            <tr>
              <SortHeader name="edge" label="Producer → consumer" defaultSort="p95" />
              <th>System</th>
              <th>Destination</th>
              <SortHeader name="count" label="Count" defaultSort="p95" numeric />
              <SortHeader name="p50" label="Dwell p50" defaultSort="p95" numeric />
              <SortHeader name="p95" label="p95" defaultSort="p95" numeric />
              <SortHeader name="p99" label="p99" defaultSort="p95" numeric />
              <SortHeader name="max" label="max" defaultSort="p95" numeric />
              <SortHeader name="flagged" label="Flagged" defaultSort="p95" numeric />
              <SortHeader name="redeliveries" label="Redeliveries" defaultSort="p95" numeric />
              <SortHeader name="skew" label="Clock skew" defaultSort="p95" numeric />
            </tr>
          </thead>
          <tbody>
            {edges.map((e) => (
              <tr data-testid="hop-row">
                <td>
                  <b>{e.producer_service}</b> → <b>{e.consumer_service}</b> <span class="muted">{e.kind}</span>
                </td>
                <td>{e.system ?? '–'}</td>
                <td>{e.destination ?? '–'}</td>
                <td class="num">{e.count}</td>
                <td class="num">{formatDuration(e.p50_ns)}</td>
                <td class="num">{formatDuration(e.p95_ns)}</td>
                <td class="num">{formatDuration(e.p99_ns)}</td>
                <td class="num">{formatDuration(e.max_ns)}</td>
                <td class="num">{e.flagged > 0 ? <Link href={edgeSearch(e)}><Badge kind="flagged">{e.flagged}</Badge></Link> : 0}</td>
                <td class="num">{e.redeliveries}</td>
                <td class="num">{e.clock_skew > 0 ? <Badge kind="skew">{e.clock_skew}</Badge> : 0}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Orphans />
    </div>
  );
}
