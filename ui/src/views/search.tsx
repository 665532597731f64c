import type { TargetedEvent } from 'preact';
import { useMemo } from 'preact/hooks';
import { api, type TraceSummary } from '../api';
import { Badge, Empty, ErrorBox, Link, SortHeader, TimeRange, rangeKey, rangeParams, sortRows, useFetch } from '../components/common';
import { Scatter } from '../components/scatter';
import { formatDuration } from '../layout/time';
import { navigate, param, params, setParams } from '../router';

/** The API's search parameters from the URL's. */
function searchQuery(): URLSearchParams {
  const q = rangeParams();
  for (const name of ['service', 'operation', 'min_duration', 'max_duration', 'limit']) {
    const v = param(name);
    if (v) q.set(name, v);
  }
  for (const name of ['errors', 'cold_start', 'flagged']) if (param(name) === '1') q.set(name, 'true');
  for (const pair of param('tags').split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq > 0) q.set(`attr.${pair.slice(0, eq)}`, pair.slice(eq + 1));
  }
  return q;
}

const SORTS: Record<string, (t: TraceSummary) => number | string> = {
  start: (t) => t.start_unix_nano.padStart(20, '0'),
  duration: (t) => t.duration_ns,
  spans: (t) => t.span_count,
  services: (t) => t.services.length,
  traces: (t) => t.flow_trace_count ?? 1,
  boundaries: (t) => t.flow_boundary_count ?? -1,
  flagged: (t) => t.flow_flagged_boundaries ?? (t.flagged ? 1 : 0),
  errors: (t) => t.error_count,
  cold: (t) => (t.cold_start ? 1 : 0),
  root: (t) => `${t.root_service} ${t.root_name}`,
};

function startDate(t: TraceSummary): Date {
  return new Date(Number(BigInt(t.start_unix_nano) / 1_000_000n));
}

function Filters() {
  const services = useFetch(`services ${rangeKey()}`, (s) => api.services(rangeParams(), s));
  const service = param('service');
  const operations = useFetch(service ? `ops ${service} ${rangeKey()}` : null, (s) => api.operations(service, rangeParams(), s));
  const onText = (name: string) => (e: TargetedEvent<HTMLInputElement>) => setParams({ [name]: e.currentTarget.value.trim() }, true);
  const onCheck = (name: string) => (e: TargetedEvent<HTMLInputElement>) => setParams({ [name]: e.currentTarget.checked ? '1' : null }, true);
  return (
    <div class="toolbar" role="search">
      <label>
        Service
        <select aria-label="service" value={service} onChange={(e) => setParams({ service: e.currentTarget.value, operation: null }, true)}>
          <option value="">all</option>
          {services.data?.services.map((s) => (
            <option value={s.name}>{s.name}</option>
          ))}
          {service && !services.data?.services.some((s) => s.name === service) && <option value={service}>{service}</option>}
        </select>
      </label>
      <label>
        Operation
        <select aria-label="operation" value={param('operation')} onChange={(e) => setParams({ operation: e.currentTarget.value }, true)} disabled={!service}>
          <option value="">all</option>
          {operations.data?.operations.map((o) => (
            <option value={o.name}>{o.name}</option>
          ))}
          {param('operation') && !operations.data?.operations.some((o) => o.name === param('operation')) && <option value={param('operation')}>{param('operation')}</option>}
        </select>
      </label>
      <TimeRange />
      <label>
        Duration
        <input aria-label="min duration" placeholder="min, 100ms" size={8} value={param('min_duration')} onChange={onText('min_duration')} />
        –
        <input aria-label="max duration" placeholder="max, 2s" size={8} value={param('max_duration')} onChange={onText('max_duration')} />
      </label>
      <label title="attr.KEY=VALUE filters, space separated">
        Attributes
        <input aria-label="attributes" class="filter-input" placeholder="http.route=/checkout" value={param('tags')} onChange={onText('tags')} />
      </label>
      <label>
        <input type="checkbox" aria-label="errors only" checked={param('errors') === '1'} onChange={onCheck('errors')} />
        errors
      </label>
      <label>
        <input type="checkbox" aria-label="cold start" checked={param('cold_start') === '1'} onChange={onCheck('cold_start')} />
        cold start
      </label>
      <label>
        <input type="checkbox" aria-label="flagged hop" checked={param('flagged') === '1'} onChange={onCheck('flagged')} />
        flagged hop
      </label>
      <label>
        Limit
        <select aria-label="limit" value={param('limit') || '20'} onChange={(e) => setParams({ limit: e.currentTarget.value === '20' ? null : e.currentTarget.value }, true)}>
          {['20', '50', '100', '500', '1000'].map((n) => (
            <option value={n}>{n}</option>
          ))}
        </select>
      </label>
    </div>
  );
}

export function SearchView() {
  const query = searchQuery();
  // Relative ranges are resolved at fetch time; the key is the URL's own.
  const key = `search ${params.value.toString()} ${rangeKey()}`;
  const result = useFetch(key, (s) => api.search(query, s));
  const sort = param('sort') || 'start';
  const desc = param('asc') !== '1';
  const rows = useMemo(() => sortRows(result.data?.traces ?? [], SORTS[sort] ?? SORTS.start, desc), [result.data, sort, desc]);
  const points = useMemo(
    () =>
      (result.data?.traces ?? []).map((t) => ({
        t: startDate(t).getTime() / 1000,
        durationNs: t.duration_ns,
        id: t.trace_id,
        error: t.error_count > 0,
      })),
    [result.data],
  );
  return (
    <div class="page">
      <Filters />
      {result.error && <ErrorBox error={result.error} />}
      {points.length > 0 && <Scatter points={points} onPick={(id) => navigate(`/traces/${id}`)} />}
      {result.data && rows.length === 0 && <Empty>No traces match in this time range.</Empty>}
      {rows.length > 0 && (
        <table class="grid" data-testid="results">
          <thead>
            <tr>
              <SortHeader name="root" label="Trace" defaultSort="start" />
              <SortHeader name="start" label="Started" defaultSort="start" />
              <SortHeader name="duration" label="Duration" defaultSort="start" numeric />
              <SortHeader name="spans" label="Spans" defaultSort="start" numeric />
              <SortHeader name="services" label="Services" defaultSort="start" />
              <SortHeader name="traces" label="Flow traces" defaultSort="start" numeric title="Traces in this trace's flow" />
              <SortHeader name="boundaries" label="Hops" defaultSort="start" numeric title="Boundaries in the flow" />
              <SortHeader name="flagged" label="Flagged" defaultSort="start" numeric title="Flagged hops in the flow" />
              <SortHeader name="cold" label="Cold start" defaultSort="start" />
              <SortHeader name="errors" label="Errors" defaultSort="start" numeric />
            </tr>
          </thead>
          <tbody>
            {rows.map((t) => (
              <tr data-testid="result" data-trace-id={t.trace_id}>
                <td>
                  <Link href={`/traces/${t.trace_id}`}>
                    <b>{t.root_service}</b> {t.root_name}
                  </Link>{' '}
                  <span class="muted mono">{t.trace_id.slice(0, 8)}</span>
                </td>
                <td title={startDate(t).toISOString()}>{startDate(t).toLocaleTimeString()}</td>
                <td class="num">{formatDuration(t.duration_ns)}</td>
                <td class="num">{t.span_count}</td>
                <td>
                  <div class="services">
                    {t.services.map((s) => (
                      <Badge kind="muted">{s}</Badge>
                    ))}
                  </div>
                </td>
                <td class="num">
                  {(t.flow_trace_count ?? 1) > 1 ? (
                    <Link href={`/flows/${t.trace_id}`} title="Open the flow">
                      {t.flow_trace_count} traces
                    </Link>
                  ) : (
                    <span class="muted">1</span>
                  )}
                </td>
                <td class="num">{t.flow_boundary_count ?? <span class="muted" title="Correlation no longer counts this flow's hops">–</span>}</td>
                <td class="num">{(t.flow_flagged_boundaries ?? 0) > 0 || t.flagged ? <Badge kind="flagged">{t.flow_flagged_boundaries ?? 'yes'}</Badge> : 0}</td>
                <td>{t.cold_start && <Badge kind="cold">cold</Badge>}</td>
                <td class="num">{t.error_count > 0 ? <Badge kind="error">{t.error_count}</Badge> : 0}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {result.loading && !result.data && <Empty>Searching…</Empty>}
    </div>
  );
}
