import type { ComponentChildren, TargetedEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import { isPlainClick, navigate, param, params, setParams } from '../router';

/** Bumped by the refresh button: relative ranges ("last 1h") are read
 * again from now. */
const refreshes = signal(0);

/** What the time range's answers depend on, for fetch keys. */
export function rangeKey(): string {
  const p = params.value;
  return `${p.get('lookback')} ${p.get('from')} ${p.get('to')} ${refreshes.value}`;
}

export interface Loaded<T> {
  data?: T;
  error?: Error;
  loading: boolean;
}

/** Fetches when `key` changes; a newer request aborts the older one so a
 * slow answer never overwrites a newer view. */
export function useFetch<T>(key: string | null, fetcher: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ loading: key !== null });
  useEffect(() => {
    if (key === null) {
      setState({ loading: false });
      return;
    }
    const abort = new AbortController();
    setState((s) => ({ data: s.data, loading: true }));
    fetcher(abort.signal).then(
      (data) => abort.signal.aborted || setState({ data, loading: false }),
      (error: Error) => abort.signal.aborted || setState({ error, loading: false }),
    );
    return () => abort.abort();
  }, [key]);
  return state;
}

/** An in-app link: a plain click navigates in place, a modified one opens
 * a tab as usual. `stopPropagation` keeps the click from the element
 * around it (a row or header that does something on click). */
export function Link(props: { href: string; class?: string; title?: string; children: ComponentChildren; 'data-testid'?: string; stopPropagation?: boolean }) {
  const onClick = (e: MouseEvent) => {
    if (props.stopPropagation) e.stopPropagation();
    if (!isPlainClick(e)) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} class={props.class} title={props.title} onClick={onClick} data-testid={props['data-testid']}>
      {props.children}
    </a>
  );
}

export function ErrorBox({ error }: { error: Error }) {
  return (
    <div class="error" role="alert">
      {error.message}
    </div>
  );
}

export function Badge(props: { kind: 'cold' | 'flagged' | 'error' | 'skew' | 'orphan' | 'muted' | 'platform'; title?: string; children: ComponentChildren }) {
  return (
    <span class={`badge badge-${props.kind}`} title={props.title}>
      {props.children}
    </span>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

const RELATIVE = ['5m', '15m', '1h', '3h', '6h', '12h', '24h', '2d', '7d'];

/** `5m`, `1h`, `2d` as milliseconds. */
export function parseLookback(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(v.trim());
  if (!m) return null;
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** The time range of the URL (`lookback`, or absolute `from` and `to`) as
 * the API's `start` and `end`. */
export function rangeParams(defaultLookback = '1h'): URLSearchParams {
  const q = new URLSearchParams();
  const from = param('from');
  const to = param('to');
  // A date that does not parse (a hand-edited link) is dropped, not fatal.
  const iso = (v: string) => {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d.toISOString();
  };
  if (from || to) {
    const start = from ? iso(from) : null;
    const end = to ? iso(to) : null;
    if (start) q.set('start', start);
    if (end) q.set('end', end);
  } else {
    const ms = parseLookback(param('lookback') || defaultLookback) ?? 3600e3;
    q.set('start', new Date(Date.now() - ms).toISOString());
  }
  return q;
}

function localInput(iso: string): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Relative ("last 1h") or absolute (from, to) time range, in the URL. */
export function TimeRange({ defaultLookback = '1h' }: { defaultLookback?: string }) {
  const absolute = !!(param('from') || param('to'));
  const lookback = param('lookback') || defaultLookback;
  const onSelect = (e: TargetedEvent<HTMLSelectElement>) => {
    const v = e.currentTarget.value;
    if (v === 'absolute') {
      const now = Date.now();
      setParams({ lookback: null, from: new Date(now - (parseLookback(lookback) ?? 3600e3)).toISOString(), to: new Date(now).toISOString() }, true);
    } else setParams({ lookback: v === defaultLookback ? null : v, from: null, to: null }, true);
  };
  const setAbs = (name: 'from' | 'to') => (e: TargetedEvent<HTMLInputElement>) => {
    const v = e.currentTarget.value;
    setParams({ [name]: v ? new Date(v).toISOString() : null }, true);
  };
  return (
    <span class="time-range">
      <select aria-label="time range" value={absolute ? 'absolute' : lookback} onChange={onSelect}>
        {RELATIVE.map((r) => (
          <option value={r}>last {r}</option>
        ))}
        {!RELATIVE.includes(lookback) && !absolute && <option value={lookback}>last {lookback}</option>}
        <option value="absolute">between…</option>
      </select>
      {absolute && (
        <>
          <input type="datetime-local" aria-label="from" value={localInput(param('from'))} onChange={setAbs('from')} />
          <input type="datetime-local" aria-label="to" value={localInput(param('to'))} onChange={setAbs('to')} />
        </>
      )}
      <button title="Refresh" aria-label="refresh" onClick={() => (refreshes.value += 1)}>
        ↻
      </button>
    </span>
  );
}

/** Sortable table header cell bound to `sort` / `desc` URL parameters. */
export function SortHeader(props: { name: string; label: string; defaultSort: string; title?: string; numeric?: boolean }) {
  const sort = param('sort') || props.defaultSort;
  const desc = param('asc') !== '1';
  const active = sort === props.name;
  const onClick = () => setParams({ sort: props.name === props.defaultSort ? null : props.name, asc: active && desc ? '1' : null });
  return (
    <th class={props.numeric ? 'num' : undefined} title={props.title} aria-sort={active ? (desc ? 'descending' : 'ascending') : undefined}>
      <button class="sort" onClick={onClick}>
        {props.label}
        {active ? (desc ? ' ▾' : ' ▴') : ''}
      </button>
    </th>
  );
}

export function sortRows<T>(rows: T[], key: (row: T) => number | string, desc: boolean): T[] {
  const out = [...rows];
  out.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return desc ? -c : c;
  });
  return out;
}
