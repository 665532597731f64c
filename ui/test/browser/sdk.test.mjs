// The explorer over spans sent by the OpenTelemetry Python SDK: a queue
// hop stitched by span link, a slow hop past its threshold and a cold
// start with its init duration.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, journeys, launch, openPage, shot, startSeam } from './harness.mjs';

let seam;
let browser;
let ids;

before(async () => {
  seam = await startSeam();
  browser = await launch();
  ids = journeys(seam, ['link', 'slow', 'coldstart_init']);
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
