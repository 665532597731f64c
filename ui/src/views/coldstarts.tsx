import { useMemo } from 'preact/hooks';
import { api, type FunctionReport } from '../api';
import { Chart } from '../components/charts';
import { Badge, Empty, ErrorBox, Link, SortHeader, TimeRange, rangeKey, rangeParams, sortRows, useFetch } from '../components/common';
import { platformVar } from '../layout/colors';
import { formatDuration } from '../layout/time';
import { param, setParams } from '../router';

const SORTS: Record<string, (f: FunctionReport) => number | string> = {
  function: (f) => f.function,
  invocations: (f) => f.invocations,
  cold: (f) => f.cold_starts,
  rate: (f) => f.rate,
  init50: (f) => f.init_p50_ns ?? -1,
  init95: (f) => f.init_p95_ns ?? -1,
  cold50: (f) => f.cold_p50_ns ?? -1,
  warm50: (f) => f.warm_p50_ns ?? -1,
  penalty: (f) => f.penalty_ns ?? -1,
};

/** Invocations and cold starts per minute, of one function or all. */
function Timeline({ fn }: { fn: string }) {
  const q = rangeParams();
  if (fn) q.set('function', fn);
  const timeline = useFetch(`timeline ${fn} ${rangeKey()}`, (s) => api.coldStartTimeline(q, s));
  const minutes = timeline.data?.minutes ?? [];
  const x = useMemo(() => minutes.map((m) => Number(BigInt(m.minute_unix_nano) / 1_000_000_000n)), [minutes]);
  const series = useMemo(
    () => [
      { label: 'invocations', values: minutes.map((m) => m.invocations), color: 'accent' as const },
      { label: 'cold starts', values: minutes.map((m) => m.cold_starts), color: 'cold' as const, bars: true },
    ],
    [minutes],
  );
  if (timeline.error) return <ErrorBox error={timeline.error} />;
  if (!minutes.length) return null;
  return <Chart x={x} series={series} time height={150} testid="cold-timeline" />;
}

/** Traces of `fn` with a cold start, slowest first, each opening its flow. */
function Examples({ fn }: { fn: string }) {
  const q = rangeParams();
  q.set('service', fn);
  q.set('cold_start', 'true');
  q.set('limit', '50');
  const found = useFetch(`examples ${fn} ${rangeKey()}`, (s) => api.search(q, s));
  const rows = sortRows(found.data?.traces ?? [], (t) => t.duration_ns, true).slice(0, 10);
  return (
    <div data-testid="cold-examples">
      <div class="section-title">Flows where a cold start of {fn} sat on the path, slowest first</div>
      {found.error && <ErrorBox error={found.error} />}
      {found.data && rows.length === 0 && <Empty>No traces with a cold start of {fn} in this range.</Empty>}
      <table class="grid">
        <tbody>
          {rows.map((t) => (
            <tr>
              <td>
                <Link href={`/flows/${t.trace_id}`}>
                  <b>{t.root_service}</b> {t.root_name}
                </Link>
              </td>
              <td class="num">{formatDuration(t.duration_ns)}</td>
              <td class="num">{t.flow_trace_count ?? 1} traces</td>
              <td class="mono muted">{t.trace_id.slice(0, 12)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const dur = (v: number | null) => (v == null ? <span class="muted">–</span> : formatDuration(v));

/** Per function: how often it started cold, how long initialization
 * took, and what a cold start cost the invocation. */
export function ColdStartsView() {
  const key = `cold ${rangeKey()}`;
  const report = useFetch(key, (s) => api.coldStarts(rangeParams(), s));
  const sort = param('sort') || 'cold';
  const desc = param('asc') !== '1';
  const rows = sortRows(report.data?.functions ?? [], SORTS[sort] ?? SORTS.cold, desc);
  return (
    <div class="page">
      <div class="toolbar">
        <b>Cold starts</b>
        <span class="muted">on-demand cold starts count toward the rate; proactive, provisioned and SnapStart starts are shown apart</span>
        <span class="grow" />
        <TimeRange />
      </div>
      {report.error && <ErrorBox error={report.error} />}
      <div class="section-title">{param('function') ? `${param('function')}, per minute` : 'All functions, per minute'}</div>
      <Timeline fn={param('function')} />
      {param('function') && <Examples fn={param('function')} />}
      {report.data && rows.length === 0 && <Empty>No function invocations in this time range.</Empty>}
      {rows.length > 0 && (
        <table class="grid" data-testid="cold-starts">
          <thead>
            <tr>
              <SortHeader name="function" label="Function" defaultSort="cold" />
              <SortHeader name="invocations" label="Invocations" defaultSort="cold" numeric />
              <SortHeader name="cold" label="Cold starts" defaultSort="cold" numeric title="On-demand cold starts; on Kubernetes, a pod's first request" />
              <SortHeader name="rate" label="Rate" defaultSort="cold" numeric />
              <th class="num">Proactive</th>
              <th class="num">Provisioned</th>
              <th class="num">SnapStart</th>
              <SortHeader name="init50" label="Init p50" defaultSort="cold" numeric />
              <SortHeader name="init95" label="Init p95" defaultSort="cold" numeric />
              <SortHeader name="cold50" label="Cold p50" defaultSort="cold" numeric />
              <SortHeader name="warm50" label="Warm p50" defaultSort="cold" numeric />
              <SortHeader name="penalty" label="Penalty" defaultSort="cold" numeric title="Cold p50 minus warm p50" />
            </tr>
          </thead>
          <tbody>
            {rows.map((f) => (
              <tr data-testid="function-row" class={`clickable${param('function') === f.function ? ' selected' : ''}`} onClick={() => setParams({ function: param('function') === f.function ? null : f.function })}>
                <td>
                  <span class="swatch" style={{ background: platformVar(f.platform) }} />
                  <b>{f.function}</b> <Badge kind="platform">{f.platform}</Badge>
                </td>
                <td class="num">{f.invocations}</td>
                <td class="num">
                  {f.cold_starts > 0 ? (
                    <Link href={`/search?service=${encodeURIComponent(f.function)}&cold_start=1&sort=duration`} title="Traces with this function's cold starts">
                      {f.cold_starts}
                    </Link>
                  ) : (
                    0
                  )}
                </td>
                <td class="num">{(f.rate * 100).toFixed(1)}%</td>
                <td class="num">{f.proactive}</td>
                <td class="num">{f.provisioned}</td>
                <td class="num">{f.snapstart}</td>
                <td class="num">{dur(f.init_p50_ns)}</td>
                <td class="num">{dur(f.init_p95_ns)}</td>
                <td class="num">{dur(f.cold_p50_ns)}</td>
                <td class="num">{dur(f.warm_p50_ns)}</td>
                <td class="num">{dur(f.penalty_ns)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
