// Time to first render in Chromium of a 10,000-span trace and a 20-trace
// flow, each opened cold (a new browser context: no cache) RUNS times.
// A benchmark, not a test: it prints figures for BENCHMARKS.md.
//
//   SEAM_BIN=target/release/seam node ui/test/bench/render.mjs
//
// Per view: wall time from navigation to the first rows drawn, the API's
// share of it (the resource timing of its JSON), what is left for the
// explorer (parse, layout, render), and Chromium's own counters of the
// page's main-thread work (CDP Performance.getMetrics: script, layout,
// style), which move less with a noisy machine than wall time does.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { eventually, launch, repo, startSeam } from '../browser/harness.mjs';

const RUNS = Number(process.env.RUNS ?? 7);
const SPANS = Number(process.env.SPANS ?? 10000);
const TRACES = Number(process.env.TRACES ?? 20);
const python = process.env.SEAM_TEST_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');

const seam = await startSeam();
const run = (script, ...args) => execFileSync(python, [path.join(repo, 'scripts', script), ...args, seam.otlpHttp], { encoding: 'utf8' }).trim().split('\n').pop();
const bigTrace = run('big_trace.py', String(SPANS));
const flowTrace = run('wide_flow.py', String(TRACES));
await eventually(`${SPANS} spans`, async () => (await seam.api(`/api/v1/traces/${bigTrace}`)).spans.length === SPANS, 120_000);
await eventually(`a flow of ${TRACES} traces`, async () => (await seam.api(`/api/v1/traces/${flowTrace}/flow`)).trace_ids.length === TRACES, 120_000);

const browser = await launch();
const views = [
  { name: `trace of ${SPANS} spans`, url: `/traces/${bigTrace}`, api: `/api/v1/traces/${bigTrace}`, ready: () => document.querySelectorAll('[data-testid=span-row]').length > 10 },
  {
    name: `flow of ${TRACES} traces`,
    url: `/flows/${flowTrace}`,
    api: `/api/v1/traces/${flowTrace}/flow`,
    ready: () => document.querySelectorAll('[data-testid=trace-header]').length > 1 && document.querySelectorAll('[data-testid=hop-label]').length > 0,
  },
];

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (xs) => `${quantile(xs, 0.5).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

for (const view of views) {
  const total = [];
  const api = [];
  const client = [];
  const script = [];
  const layout = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(seam.base + view.url, { waitUntil: 'commit' });
    const at = await (await page.waitForFunction(`(${view.ready.toString()})() && performance.now()`, undefined, { polling: 'raf', timeout: 120_000 })).jsonValue();
    const entry = await page.evaluate((p) => {
      const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith(p));
      return e && { end: e.responseEnd, start: e.requestStart, size: e.encodedBodySize };
    }, view.api);
    const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    total.push(at);
    api.push(entry.end - entry.start);
    client.push(at - entry.end);
    script.push(metrics.ScriptDuration * 1000);
    layout.push((metrics.LayoutDuration + metrics.RecalcStyleDuration) * 1000);
    bytes = entry.size;
    await context.close();
  }
  console.log(`${view.name}: first render ${fmt(total)}; API ${fmt(api)} for ${(bytes / 1e6).toFixed(1)} MB; after the data ${fmt(client)}; main-thread script ${fmt(script)}, layout+style ${fmt(layout)}`);
}
await browser.close();
await seam.stop();
