// The explorer against `seam serve --demo`: every view, clicked through as
// a person would, checked against what the JSON API says.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, launch, openPage, shot, startSeam } from './harness.mjs';

let seam;
let browser;

before(async () => {
  seam = await startSeam(['--demo']);
  browser = await launch();
  // The demo's flows, queue hops and cold starts arrive within seconds.
  await eventually('a stitched flow with a queue hop', async () => {
    const { traces } = await seam.api('/api/v1/search?limit=100');
    return traces.some((t) => t.flow_trace_count > 1);
  });
  await eventually('cold starts', async () => (await seam.api('/api/v1/cold-starts')).functions.some((f) => f.cold_starts > 0));
});

after(async () => {
  await browser?.close();
  await seam?.stop();
});

test('search finds a flow; search → trace → flow shows every trace and every hop with its dwell', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/search`);
  await page.getByTestId('result').first().waitFor();
  await shot(page, 'search');
  // The scatter plot and the results list are both drawn.
  await page.getByTestId('scatter').locator('canvas').first().waitFor();
  const flowRow = page.locator('[data-testid=result]', { has: page.locator('a[title="Open the flow"]') }).first();
  await flowRow.waitFor();
  const traceId = await flowRow.getAttribute('data-trace-id');
  await flowRow.locator('td').first().locator('a').first().click();
  await page.waitForURL(`**/traces/${traceId}`);
  await page.getByTestId('span-row').first().waitFor();
  const trace = await seam.api(`/api/v1/traces/${traceId}`);
  assert.equal(await page.getByTestId('span-row').count(), trace.spans.length, 'one row per span');
  await shot(page, 'trace');

  await page.getByTestId('flow-link').click();
  await page.waitForURL(`**/flows/${traceId}`);
  await page.getByTestId('trace-header').first().waitFor();
  const flow = await seam.api(`/api/v1/traces/${traceId}/flow`);
  const headers = await page.getByTestId('trace-header').evaluateAll((els) => els.map((e) => e.getAttribute('data-trace-id')));
  assert.deepEqual([...headers].sort(), [...flow.trace_ids].sort(), 'a header per member trace');
  assert.equal(await page.getByTestId('span-row').count(), flow.spans.length, 'every span of every trace');
  assert.ok(flow.boundaries.length >= 1);
  const labels = await page.getByTestId('hop-label').evaluateAll((els) => els.map((e) => ({ text: e.textContent, hops: Number(e.getAttribute('data-hops')) })));
  // Every boundary is labelled with its dwell: alone, or in its consumer's
  // batch label that says how many messages it holds.
  assert.equal(labels.reduce((n, l) => n + l.hops, 0), flow.boundaries.length, JSON.stringify(labels));
  const three = (v) => +v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2);
  const fmt = (ns) => (ns >= 1e9 ? `${three(ns / 1e9)} s` : `${three(ns / 1e6)} ms`);
  for (const l of labels.filter((x) => x.hops === 1)) {
    const b = flow.boundaries.find((x) => l.text.includes(x.stitched_by) && l.text.includes(fmt(x.latency_ns)));
    assert.ok(b, `label "${l.text}" is one of the flow's boundaries with its dwell`);
  }
  await shot(page, 'flow');
  assert.deepEqual(errors(), []);
});

test('search by attribute and by minimum duration narrows the results as the API does', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/search`);
  await page.getByTestId('result').first().waitFor();
  await page.getByLabel('attributes').fill('http.route=/checkout');
  await page.getByLabel('attributes').press('Enter');
  await page.waitForURL(/tags=http.route/);
  const answered = page.waitForResponse((r) => r.url().includes('/api/v1/search') && r.url().includes('min_duration=50ms'));
  await page.getByLabel('min duration').fill('50ms');
  await page.getByLabel('min duration').press('Enter');
  await page.waitForURL(/min_duration=50ms/);
  const url = new URL(page.url());
  const { traces } = await (await answered).json();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=result]').length === n, traces.length);
  const shown = await page.getByTestId('result').evaluateAll((els) => els.map((e) => e.getAttribute('data-trace-id')));
  assert.deepEqual(shown.sort(), traces.map((t) => t.trace_id).sort());
  assert.ok(shown.length > 0, 'some checkouts took 50 ms or more');
  // Each is a trace with a span on that route of 50 ms or more.
  for (const id of shown) {
    const { spans } = await seam.api(`/api/v1/traces/${id}`);
    assert.ok(spans.some((s) => s.attributes['http.route'] === '/checkout' && s.duration_ns >= 50e6), `${id} matches`);
  }
  assert.equal(url.searchParams.get('tags'), 'http.route=/checkout');
  await shot(page, 'search-filtered');
  assert.deepEqual(errors(), []);
});

test('the map shows the queue node and the histogram of an edge out of it', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/map`);
  const queue = page.locator('[data-testid=map-node][data-kind=queue][data-node="q:aws_sqs:orders"]');
  await queue.waitFor();
  await queue.click();
  await page.getByTestId('node-panel').waitFor();
  const edge = page.locator('[data-testid=map-edge][data-edge="q:aws_sqs:orders->s:invoice"]');
  await edge.click({ force: true });
  await page.getByTestId('edge-histogram').locator('canvas').first().waitFor();
  const examples = page.getByTestId('edge-examples').locator('tr');
  await examples.first().waitFor();
  assert.ok((await examples.count()) >= 1);
  assert.match(page.url(), /edge=/, 'the selected edge is in the URL');
  await shot(page, 'map');
  assert.deepEqual(errors(), []);
});

test("the cold-start view lists the demo's functions", async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/cold-starts`);
  await page.getByTestId('function-row').first().waitFor();
  const { functions } = await seam.api('/api/v1/cold-starts');
  const shown = await page.getByTestId('function-row').locator('td:first-child b').allTextContents();
  for (const f of functions) assert.ok(shown.includes(f.function), `${f.function} listed`);
  await shot(page, 'cold-starts');
  assert.deepEqual(errors(), []);
});

test('the hops view lists every edge', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/hops`);
  await page.getByTestId('hop-row').first().waitFor();
  const { edges } = await seam.api('/api/v1/boundaries');
  assert.ok((await page.getByTestId('hop-row').count()) >= edges.length - 1);
  await shot(page, 'hops');
  assert.deepEqual(errors(), []);
});

test('the SQL console runs a query and shows the sandbox refusing DROP TABLE', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/sql`);
  await page.getByTestId('sql-tables').getByText('boundaries').first().waitFor();
  const editor = page.getByLabel('SQL');
  await editor.fill('SELECT service_name, count(*) AS spans FROM spans GROUP BY 1 ORDER BY 2 DESC');
  await editor.press('Control+Enter');
  await page.getByTestId('sql-results').waitFor();
  assert.ok((await page.getByTestId('sql-results').locator('tbody tr').count()) > 3);
  await editor.fill('DROP TABLE spans');
  await editor.press('Control+Enter');
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /read-only/);
  await shot(page, 'sql');
  // The console's own error display is not a page error.
  assert.deepEqual(errors().filter((e) => !e.includes('400')), []);
});

test('a deep link opened cold restores the same view', async () => {
  const { traces } = await seam.api('/api/v1/search?limit=100');
  const t = traces.find((x) => x.span_count >= 2);
  const trace = await seam.api(`/api/v1/traces/${t.trace_id}`);
  const child = trace.spans.find((s) => s.parent_span_id);
  const service = child.service_name;
  const url = `${seam.base}/traces/${t.trace_id}?span=${child.span_id}&filter=${encodeURIComponent(service)}`;
  const { page, errors } = await openPage(browser);
  await page.goto(url);
  await page.getByTestId('span-detail').waitFor();
  assert.equal(await page.getByLabel('span filter').inputValue(), service);
  assert.match(await page.getByTestId('span-detail').locator('h2').textContent(), new RegExp(child.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const rows = await page.getByTestId('span-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-service')));
  assert.ok(rows.length > 0 && rows.every((s) => s === service), 'the filter hides other services');
  const selected = page.locator('[data-testid=span-row].selected');
  assert.equal(await selected.getAttribute('data-span-id'), child.span_id);
  await shot(page, 'deep-link');
  assert.deepEqual(errors(), []);
});

test('a flow link restores a folded trace; a link with a bad date still opens', async () => {
  const { traces } = await seam.api('/api/v1/search?limit=100');
  const t = traces.find((x) => x.flow_trace_count > 1);
  const flow = await seam.api(`/api/v1/traces/${t.trace_id}/flow`);
  const folded = flow.trace_ids[0];
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/flows/${t.trace_id}?collapsed=${encodeURIComponent(`t:${folded}`)}`);
  await page.getByTestId('trace-header').first().waitFor();
  assert.equal(await page.getByTestId('trace-header').count(), flow.trace_ids.length);
  const visible = await page.getByTestId('span-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-span-id')));
  const foldedSpans = flow.spans.filter((s) => s.trace_id === folded).map((s) => s.span_id);
  assert.ok(foldedSpans.length > 0 && foldedSpans.every((id) => !visible.includes(id)), 'the folded trace shows no rows');
  assert.equal(visible.length, flow.spans.length - foldedSpans.length);
  // A hand-edited date is dropped: the search still answers.
  await page.goto(`${seam.base}/search?from=yesterday`);
  await page.getByTestId('result').first().waitFor();
  assert.deepEqual(errors(), []);
});

test('the dark theme follows the system setting', async () => {
  const { page, errors } = await openPage(browser, { colorScheme: 'dark' });
  await page.goto(`${seam.base}/map`);
  await page.getByTestId('map-node').first().waitFor();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = background.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 120, `a dark background: ${background}`);
  await shot(page, 'map-dark');
  assert.deepEqual(errors(), []);
});
