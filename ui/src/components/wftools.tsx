/** What the trace and flow views share around their waterfall: collapsed
 * rows, the span filter and the critical-path switch, all in the URL. */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { param, paramSet, setParams } from '../router';

/** The collapsed rows (`collapsed=` in the URL) and how to flip one. */
export function useCollapsed() {
  const raw = param('collapsed');
  const collapsed = useMemo(() => paramSet('collapsed'), [raw]);
  const toggle = (id: string) => {
    const next = new Set(collapsed);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setParams({ collapsed: [...next].join(',') });
  };
  return { collapsed, toggle };
}

/** The span filter; `/` anywhere on the page focuses it, as in Jaeger's
 * search boxes. */
export function SpanFilter() {
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const tag = (e.target as HTMLElement).tagName;
      if (e.key === '/' && tag !== 'INPUT' && tag !== 'TEXTAREA') {
        e.preventDefault();
        ref.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <input
      ref={ref}
      class="filter-input"
      aria-label="span filter"
      placeholder="/ filter spans: words or key=value"
      value={param('filter')}
      onInput={(e) => setParams({ filter: e.currentTarget.value })}
    />
  );
}

export function showCritical(): boolean {
  return param('critical') !== '0';
}

export function CriticalToggle() {
  return (
    <label>
      <input type="checkbox" checked={showCritical()} onChange={(e) => setParams({ critical: e.currentTarget.checked ? null : '0' })} />
      critical path
    </label>
  );
}
