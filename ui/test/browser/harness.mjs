// Starts a real `seam serve` and a headless Debian Chromium (through
// playwright-core) for the explorer's browser tests, and collects what
// the page logged so that every test can assert there were no errors.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../../..');
export const screenshots = path.join(repo, 'target', 'ui-screenshots');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export function seamBinary() {
  const bin = process.env.SEAM_BIN ?? path.join(repo, 'target', 'debug', 'seam');
  if (!existsSync(bin)) throw new Error(`no seam binary at ${bin}: build it (cargo build --bin seam) or set SEAM_BIN`);
  return bin;
}

/** A `seam serve` on free ports with its own data dir; `args` adds flags. */
export async function startSeam(args = []) {
  const [api, grpc, http] = [await freePort(), await freePort(), await freePort()];
  const dataDir = mkdtempSync(path.join(tmpdir(), 'seam-ui-'));
  const child = spawn(
    seamBinary(),
    ['serve', '--api-listen', `127.0.0.1:${api}`, '--grpc-listen', `127.0.0.1:${grpc}`, '--http-listen', `127.0.0.1:${http}`, '--data-dir', dataDir, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const base = `http://127.0.0.1:${api}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`seam exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`seam not ready in 60 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    otlpHttp: `http://127.0.0.1:${http}`,
    async api(p) {
      const res = await fetch(base + p);
      if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns something truthy. */
export async function eventually(what, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function chromiumPath() {
  return process.env.CHROMIUM ?? '/usr/bin/chromium';
}

/** Headless Chromium with the flags this machine's closed network needs. */
export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page at 1280×800 that records console errors and uncaught
 * exceptions; `errors()` returns them. */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: options.colorScheme ?? 'light' });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => {
    const failure = r.failure()?.errorText ?? '';
    // A newer request replacing an older one aborts it on purpose.
    if (!failure.includes('ERR_ABORTED')) errors.push(`request failed: ${r.url()} ${failure}`);
  });
  return { page, context, errors: () => errors };
}

export async function shot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, `${name}.png`) });
}

/** The venv's Python with the OpenTelemetry SDK (made by scripts/test). */
export function python() {
  return process.env.SEAM_TEST_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
}

/** Runs the Python SDK journeys (integration-tests/python) against seam. */
export function journeys(seam, scenarios) {
  const out = execFileSync(
    python(),
    [path.join(repo, 'integration-tests', 'python', 'journeys.py'), '--protocol', 'http', '--endpoint', seam.otlpHttp, ...scenarios.flatMap((s) => ['--scenario', s])],
    { encoding: 'utf8' },
  );
  return JSON.parse(out);
}
