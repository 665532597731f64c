import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { ErrorBox, useFetch } from '../components/common';
import { param, setParams } from '../router';

const HISTORY_KEY = 'seam.sql.history';
const DEFAULT_SQL = 'SELECT flow_id, trace_count, services, boundary_count, flagged_boundaries, cold_starts\nFROM flows\nWHERE trace_count > 1\nORDER BY start_time DESC\nLIMIT 20';

function history(): string[] {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function remember(sql: string) {
  const list = [sql, ...history().filter((x) => x !== sql)].slice(0, 50);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function csv(columns: string[], rows: unknown[][]): string {
  const esc = (v: unknown) => {
    const s = cell(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map(esc).join(','), ...rows.map((r) => r.map(esc).join(','))].join('\r\n') + '\r\n';
}

/** SQL over the tables, read-only and sandboxed by the server: what it
 * refuses is shown as the server said it. The query is in the URL, the
 * history in this browser. */
export function SqlView() {
  const [text, setText] = useState(param('q') || DEFAULT_SQL);
  const [result, setResult] = useState<{ columns: string[]; rows: unknown[][]; ms: number } | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [running, setRunning] = useState(false);
  const [past, setPast] = useState(history());
  const editor = useRef<HTMLTextAreaElement>(null);
  const schema = useFetch('schema', (s) =>
    api.sql("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position", s),
  );
  const tables = new Map<string, [string, string][]>();
  for (const [t, c, ty] of (schema.data?.rows ?? []) as [string, string, string][]) {
    if (!tables.has(t)) tables.set(t, []);
    tables.get(t)!.push([c, ty]);
  }

  // Only the latest run's answer is shown: a new run aborts the one before.
  const current = useRef<AbortController | null>(null);
  const run = async (sql = text) => {
    current.current?.abort();
    const abort = new AbortController();
    current.current = abort;
    setRunning(true);
    setError(null);
    setParams({ q: sql });
    const t0 = performance.now();
    try {
      const r = await api.sql(sql, abort.signal);
      if (abort.signal.aborted) return;
      setResult({ ...r, ms: performance.now() - t0 });
      remember(sql);
      setPast(history());
    } catch (e) {
      if (abort.signal.aborted) return;
      setResult(null);
      setError(e instanceof ApiError ? e : new Error(String(e)));
    } finally {
      if (!abort.signal.aborted) setRunning(false);
    }
  };
  // A link with a query runs it when opened.
  useEffect(() => {
    if (param('q')) run(param('q'));
  }, []);

  const insert = (word: string) => {
    const el = editor.current!;
    const start = el.selectionStart;
    const next = text.slice(0, start) + word + text.slice(el.selectionEnd);
    setText(next);
    requestAnimationFrame(() => {
      el.focus();
      el.selectionStart = el.selectionEnd = start + word.length;
    });
  };
  const download = () => {
    if (!result) return;
    const blob = new Blob([csv(result.columns, result.rows)], { type: 'text/csv' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'seam-query.csv';
    a.click();
    URL.revokeObjectURL(a.href);
  };
  return (
    <div class="page sql-layout">
      <div class="sql-tables" data-testid="sql-tables">
        <div class="section-title">Tables</div>
        {[...tables.entries()].map(([t, cols]) => (
          <details open={t === 'flows'}>
            <summary>
              <span onClick={(e) => { e.preventDefault(); insert(t); }} title="Insert">{t}</span>
            </summary>
            {cols.map(([c, ty]) => (
              <button onClick={() => insert(c)} title={ty}>
                {c} <span class="muted">{ty.length > 14 ? ty.slice(0, 14) + '…' : ty}</span>
              </button>
            ))}
          </details>
        ))}
        {past.length > 0 && (
          <>
            <div class="section-title">History</div>
            <div class="sql-history">
              {past.map((q) => (
                <button title={q} onClick={() => setText(q)}>
                  {q.replace(/\s+/g, ' ')}
                </button>
              ))}
            </div>
          </>
        )}
      </div>
      <div class="sql-main">
        <textarea
          ref={editor}
          aria-label="SQL"
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              run();
            }
          }}
        />
        <div class="toolbar" style={{ marginTop: 6 }}>
          <button class="primary" onClick={() => run()} disabled={running}>
            {running ? 'Running…' : 'Run'}
          </button>
          <span class="muted">Ctrl+Enter</span>
          {result && (
            <>
              <span data-testid="sql-summary">
                {result.rows.length} rows in {result.ms.toFixed(0)} ms
              </span>
              <button onClick={download}>Download CSV</button>
            </>
          )}
        </div>
        {error && <ErrorBox error={error} />}
        {result && (
          <div class="sql-results">
            <table class="grid" data-testid="sql-results">
              <thead>
                <tr>
                  {result.columns.map((c) => (
                    <th>{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {result.rows.slice(0, 5000).map((r) => (
                  <tr>
                    {r.map((v) => (
                      <td class={typeof v === 'number' ? 'num' : undefined}>{cell(v)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
            {result.rows.length > 5000 && <div class="muted">First 5,000 of {result.rows.length} rows shown; the CSV has all.</div>}
          </div>
        )}
      </div>
    </div>
  );
}
