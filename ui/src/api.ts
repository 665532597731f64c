/** The JSON API the explorer reads; the same endpoints work with curl. */
import { signal } from '@preact/signals';

export interface Attributes {
  [key: string]: string | null;
}

export interface Span {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: string;
  service_name: string;
  platform: string;
  instance: string | null;
  start_unix_nano: string;
  end_unix_nano: string;
  duration_ns: number;
  status: { code: string; message: string };
  attributes: Attributes;
  resource: Attributes;
  events: { time_unix_nano: string; name: string; attributes: Attributes }[];
  links: { trace_id: string; span_id: string; attributes: Attributes }[];
  cold_start: boolean | null;
  cold_start_type: string | null;
  init_duration_ns: number | null;
  flow_id: string | null;
}

export interface Boundary {
  flow_id: string | null;
  kind: string;
  stitched_by: string;
  correlation_key: string | null;
  correlation_value: string | null;
  producer_trace_id: string;
  producer_span_id: string;
  producer_service: string;
  producer_platform: string;
  consumer_trace_id: string;
  consumer_span_id: string;
  consumer_service: string;
  consumer_platform: string;
  system: string | null;
  destination: string | null;
  producer_time: string;
  consumer_time: string;
  latency_ns: number;
  flagged: boolean;
  clock_skew: boolean;
  consumer_cold_start: boolean;
  deliveries: number;
  redelivery: boolean;
}

export interface TraceSummary {
  trace_id: string;
  flow_id: string | null;
  root_service: string;
  root_name: string;
  start_unix_nano: string;
  duration_ns: number;
  span_count: number;
  error_count: number;
  services: string[];
  platforms: string[];
  cold_start: boolean;
  flagged: boolean;
  flow_trace_count?: number;
  flow_boundary_count?: number;
  flow_flagged_boundaries?: number;
}

export interface Flow {
  flow_id: string;
  trace_ids: string[];
  spans: Span[];
  boundaries: Boundary[];
}

export interface Edge {
  producer_service: string;
  system: string | null;
  destination: string | null;
  consumer_service: string;
  kind: string;
  count: number;
  p50_ns: number;
  p95_ns: number;
  p99_ns: number;
  max_ns: number;
  flagged: number;
  redeliveries: number;
  clock_skew: number;
}

export interface FunctionReport {
  function: string;
  platform: string;
  invocations: number;
  cold_starts: number;
  rate: number;
  proactive: number;
  provisioned: number;
  snapstart: number;
  init_p50_ns: number | null;
  init_p95_ns: number | null;
  cold_p50_ns: number | null;
  warm_p50_ns: number | null;
  penalty_ns: number | null;
}

export interface EdgeDetail {
  /** Counts of dwell times up to each bound (ns), powers of two. */
  buckets: { le_ns: number; count: number }[];
  slowest: Boundary[];
}

export interface Orphan {
  kind: 'orphan' | 'unconsumed';
  trace_id: string;
  span_id: string;
  service_name: string;
  system: string | null;
  destination: string | null;
  correlation_key: string | null;
  correlation_value: string | null;
  time_unix_nano: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'seam.token';

/** Set when the API asked for a bearer token the explorer does not have. */
export const needsToken = signal(false);

export function setToken(token: string) {
  localStorage.setItem(TOKEN_KEY, token);
  needsToken.value = false;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function answer<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, text.slice(0, 500) || res.statusText);
  }
  if (!res.ok) {
    if (res.status === 401) needsToken.value = true;
    const message = (body as { error?: string } | null)?.error ?? res.statusText;
    throw new ApiError(res.status, message);
  }
  return body as T;
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return answer<T>(await fetch(path, { headers: headers(), signal }));
}

export async function post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return answer<T>(
    await fetch(path, {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
      signal,
    }),
  );
}

export const api = {
  trace: (id: string, s?: AbortSignal) => get<{ trace_id: string; spans: Span[] }>(`/api/v1/traces/${id}`, s),
  flow: (id: string, s?: AbortSignal) => get<Flow>(`/api/v1/traces/${id}/flow`, s),
  /** The flow's traces and boundaries without its spans. */
  flowInfo: (id: string, s?: AbortSignal) => get<Flow>(`/api/v1/traces/${id}/flow?spans=false`, s),
  search: (q: URLSearchParams, s?: AbortSignal) => get<{ traces: TraceSummary[] }>(`/api/v1/search?${q}`, s),
  services: (q: URLSearchParams, s?: AbortSignal) =>
    get<{ services: { name: string; platform: string; cloud_platform: string | null; spans: number }[] }>(`/api/v1/services?${q}`, s),
  operations: (service: string, q: URLSearchParams, s?: AbortSignal) =>
    get<{ operations: { name: string; kind: string; spans: number }[] }>(
      `/api/v1/services/${encodeURIComponent(service)}/operations?${q}`,
      s,
    ),
  boundaries: (q: URLSearchParams, s?: AbortSignal) => get<{ edges: Edge[] }>(`/api/v1/boundaries?${q}`, s),
  edge: (q: URLSearchParams, s?: AbortSignal) => get<EdgeDetail>(`/api/v1/boundaries/edge?${q}`, s),
  coldStartTimeline: (q: URLSearchParams, s?: AbortSignal) => get<{ minutes: { minute_unix_nano: string; invocations: number; cold_starts: number }[] }>(`/api/v1/cold-starts/timeline?${q}`, s),
  orphans: (q: URLSearchParams, s?: AbortSignal) => get<{ orphans: Orphan[] }>(`/api/v1/orphans?${q}`, s),
  coldStarts: (q: URLSearchParams, s?: AbortSignal) => get<{ functions: FunctionReport[] }>(`/api/v1/cold-starts?${q}`, s),
  sql: (sql: string, s?: AbortSignal) => post<{ columns: string[]; rows: unknown[][] }>('/api/v1/sql', { sql }, s),
};
