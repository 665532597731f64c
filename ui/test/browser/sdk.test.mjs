// The explorer over spans sent by the OpenTelemetry Python SDK: a queue
// hop stitched by span link, a slow hop past its threshold and a cold
// start with its init duration.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { eventually, journeys, launch, openPage, python, repo, shot, startSeam } from './harness.mjs';

let seam;
let browser;
let ids;

before(async () => {
  seam = await startSeam();
  browser = await launch();
  ids = journeys(seam, ['link', 'slow', 'skew', 'coldstart_init', 'orphan', 'unconsumed']);
  await eventually('the slow hop stitched and flagged', async () => {
    const flow = await seam.api(`/api/v1/traces/${ids.slow.consumer_trace}/flow`);
    return flow.boundaries.some((b) => b.flagged);
  });
});

after(async () => {
  await browser?.close();
  await seam?.stop();
});

test('a link-stitched hop: both traces on one timeline, navigable both ways', async () => {
  const { page, errors } = await openPage(browser);
  const { producer_trace: producer, producer_span: pspan, consumer_trace: consumer, consumer_span: cspan } = ids.link;
  await page.goto(`${seam.base}/flows/${consumer}?span=${cspan}`);
  await page.getByTestId('span-detail').waitFor();
  const headers = await page.getByTestId('trace-header').evaluateAll((els) => els.map((e) => e.getAttribute('data-trace-id')));
  assert.deepEqual(headers.sort(), [producer, consumer].sort());
  const label = await page.getByTestId('hop-label').first().textContent();
  assert.match(label, /link/);
  // The consumer names its producer; the link opens it in place.
  await page.getByTestId('span-messages').getByRole('link').first().click();
  await page.waitForURL(new RegExp(`span=${pspan}`));
  assert.equal(await page.locator('[data-testid=span-row].selected').getAttribute('data-span-id'), pspan);
  // And from the producer's side, the message leads to its consumer.
  await page.getByTestId('span-messages').getByRole('link').first().click();
  await page.waitForURL(new RegExp(`span=${cspan}`));
  await shot(page, 'sdk-link-flow');
  assert.deepEqual(errors(), []);
});

test('a flagged hop is marked in search and in the flow', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/search?flagged=1&lookback=7d`);
  const row = page.locator(`[data-testid=result][data-trace-id="${ids.slow.consumer_trace}"]`);
  await row.waitFor();
  await row.locator('a[title="Open the flow"]').click();
  await page.getByTestId('hop-label').first().waitFor();
  assert.ok(await page.locator('.hop-label.flagged').count() >= 1, 'the slow hop is labelled as flagged');
  assert.ok(await page.locator('.hop-bar.flagged').count() >= 1);
  await shot(page, 'sdk-flagged-flow');
  assert.deepEqual(errors(), []);
});

test("clock skew is marked on the hop whose consumer's clock is behind", async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/flows/${ids.skew.consumer_trace}`);
  const label = page.getByTestId('hop-label').first();
  await label.waitFor();
  assert.match(await label.textContent(), /clock skew/);
  assert.match(await label.getAttribute('title'), /received before the producer sent/);
  assert.equal(await page.locator('.hop-bar.skew').count(), 1);
  await shot(page, 'sdk-skew');
  assert.deepEqual(errors(), []);
});

test('a message nobody consumed and a consumer with no producer are marked on their rows', async () => {
  const { page, errors } = await openPage(browser);
  for (const [scenario, text] of [
    ['unconsumed', 'no consumer seen'],
    ['orphan', 'no producer seen'],
  ]) {
    const { trace, span } = ids[scenario];
    await page.goto(`${seam.base}/flows/${trace}`);
    const row = page.locator(`[data-testid=span-row][data-span-id="${span}"]`);
    await row.waitFor();
    assert.equal(await row.getByTestId('row-mark').textContent(), text);
    assert.equal(await page.getByTestId('row-mark').count(), 1, `only ${scenario}'s span is marked`);
  }
  assert.deepEqual(errors(), []);
});

test("a cold start's init duration is drawn as its own segment", async () => {
  const [traceId, spanId] = ids.coldstart_init.first;
  const trace = await seam.api(`/api/v1/traces/${traceId}`);
  const cold = trace.spans.find((s) => s.cold_start && s.init_duration_ns);
  assert.ok(cold, 'the SDK journey reports an init duration');
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/traces/${traceId}?span=${spanId}`);
  const row = page.locator(`[data-testid=span-row][data-span-id="${cold.span_id}"]`);
  await row.waitFor();
  const init = row.locator('.bar .init');
  assert.equal(await init.count(), 1);
  assert.match(await init.getAttribute('title'), /^init /);
  assert.ok((await init.boundingBox()).width >= 2);
  await shot(page, 'sdk-cold-start');
  assert.deepEqual(errors(), []);
});

test('a trace of 10,000 spans: only what is on screen is drawn; keys, collapse and filter work', async () => {
  const id = execFileSync(python(), [path.join(repo, 'scripts', 'big_trace.py'), '10000', seam.otlpHttp], { encoding: 'utf8' }).trim().split('\n').pop();
  const trace = await eventually('the whole trace', async () => {
    const t = await seam.api(`/api/v1/traces/${id}`);
    return t.spans.length === 10000 && t;
  });
  const { page, errors } = await openPage(browser);
  await page.goto(`${seam.base}/traces/${id}`);
  await page.getByTestId('span-row').first().waitFor();
  const drawn = await page.getByTestId('span-row').count();
  assert.ok(drawn > 10 && drawn < 200, `${drawn} rows in the DOM`);
  assert.match(await page.locator('.wf-axis .names').textContent(), /10000 rows/);
  // j selects the first row, then the next; Enter collapses the selected span.
  const root = trace.spans.find((s) => !s.parent_span_id);
  const firstStep = trace.spans.filter((s) => s.parent_span_id === root.span_id).sort((a, b) => (BigInt(a.start_unix_nano) < BigInt(b.start_unix_nano) ? -1 : 1))[0];
  await page.getByTestId('waterfall').focus();
  await page.keyboard.press('j');
  await page.waitForURL(new RegExp(`span=${root.span_id}`));
  await page.keyboard.press('j');
  await page.waitForURL(new RegExp(`span=${firstStep.span_id}`));
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`collapsed=${firstStep.span_id}`));
  const hidden = trace.spans.filter((s) => s.parent_span_id === firstStep.span_id).length;
  assert.match(await page.locator('.wf-axis .names').textContent(), new RegExp(`${10000 - hidden} rows`));
  // Collapsing a row far down keeps the view where it is.
  const waterfall = page.getByTestId('waterfall');
  await waterfall.evaluate((el) => (el.scrollTop = 60_000));
  const toggle = page.locator('[data-testid=span-row] button[aria-label=collapse]').nth(3);
  await toggle.waitFor();
  const before = await waterfall.evaluate((el) => el.scrollTop);
  await toggle.click();
  await page.waitForURL(/collapsed=[0-9a-f]+%2C|collapsed=[0-9a-f]+,/);
  await page.waitForTimeout(200);
  const after = await waterfall.evaluate((el) => el.scrollTop);
  assert.ok(Math.abs(after - before) < 50, `scrolled from ${before} to ${after}`);
  // "/" focuses the filter; what does not match is hidden, not dimmed.
  await page.keyboard.press('/');
  await page.keyboard.type('step-11');
  await page.waitForURL(/filter=step-11/);
  const matching = trace.spans.filter((s) => s.name === 'step-11').length;
  assert.ok(matching > 0);
  await page.waitForFunction((n) => document.querySelector('.wf-axis .names').textContent === `${n} rows`, matching);
  const names = await page.getByTestId('span-row').locator('.op').allTextContents();
  assert.ok(names.length > 0 && names.every((n) => n === 'step-11'), names.slice(0, 5).join(', '));
  // Dragging across the minimap zooms the waterfall to that stretch, in
  // the URL; the axis then counts from where the stretch begins.
  await page.getByLabel('span filter').fill('');
  const map = await page.getByTestId('minimap').boundingBox();
  await page.mouse.move(map.x + map.width * 0.5, map.y + map.height / 2);
  await page.mouse.down();
  await page.mouse.move(map.x + map.width * 0.6, map.y + map.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/zoom=0\.[45]\d*-0\.[56]\d*/);
  const firstTick = await page.locator('.wf-axis .tick').first().textContent();
  assert.notEqual(firstTick, '0', 'the zoomed axis starts inside the trace');
  await page.getByRole('button', { name: 'Reset zoom' }).click();
  await page.waitForURL((u) => !u.searchParams.has('zoom'));
  await shot(page, 'sdk-10k-trace');
  assert.deepEqual(errors(), []);
});
