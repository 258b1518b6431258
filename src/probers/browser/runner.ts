/**
 * The browser runner: a child process of vigil (its own process group) that drives one Chromium
 * through one user script and reports on stdout. It is the `main` of that process, so it touches
 * `process`; vigil kills its whole group (runner and Chromium) at the run's deadline.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { createRedactor, type Redactor } from '../../lib/redactor.js';
import type { BrowserJob, BrowserOutcome, PidRecord, RunnerMessage, Vitals } from './protocol.js';
import { readZip, writeZip } from './zip.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
/** Kept per list: enough to act on, bounded whatever a page logs. */
const MAX_LISTED = 20;
const TEXT_MAX = 300;
const LAUNCH_TIMEOUT_MS = 20_000;
const SCREENSHOT_TIMEOUT_MS = 3_000;

// Web Vitals of the page's navigation, kept where the runner reads them before closing: LCP and
// CLS by PerformanceObserver (buffered, so entries before the observer count), TTFB from the
// navigation entry when read.
const VITALS_SCRIPT = `(() => {
  const v = { lcp: undefined, cls: 0 };
  Object.defineProperty(globalThis, '__vigilVitals', { value: v });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) v.lcp = e.renderTime || e.loadTime || e.startTime;
    }).observe({ type: 'largest-contentful-paint', buffered: true });
  } catch {}
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (!e.hadRecentInput) v.cls += e.value;
    }).observe({ type: 'layout-shift', buffered: true });
  } catch {}
})();`;

function send(message: RunnerMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function readJob(): Promise<BrowserJob> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as BrowserJob;
}

function chromiumFor(job: BrowserJob): string | undefined {
  if (job.chromium) return job.chromium;
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return fromEnv;
  return CANDIDATES.find((p) => existsSync(p));
}

/** The first line of an error: Playwright appends call logs that help no one paged at night. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > TEXT_MAX ? `${line.slice(0, TEXT_MAX - 1)}…` : line;
}

/** Chromium asks every site for /favicon.ico and logs its 404 as a console error: no one's journey broke. */
function isFavicon(url: string): boolean {
  try {
    return new URL(url).pathname === '/favicon.ico';
  } catch {
    return false;
  }
}

function push(list: string[], text: string): void {
  if (list.length < MAX_LISTED) list.push(text.length > TEXT_MAX ? `${text.slice(0, TEXT_MAX - 1)}…` : text);
}

/** What a script gets besides the page: its env, and steps. */
interface JourneyContext {
  readonly env: Readonly<Record<string, string>>;
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
}

async function run(job: BrowserJob, redactor: Redactor): Promise<BrowserOutcome> {
  const started = performance.now();
  const outcome = emptyOutcome();
  // The script first: a module that does not load fails the run without starting a browser.
  let journey: (page: Page, c: JourneyContext) => Promise<void>;
  try {
    const mod = (await import(pathToFileURL(job.script).href)) as { default?: unknown };
    if (typeof mod.default !== 'function') {
      const error = `${path.basename(job.script)} has no default export function (export default async (page, ctx) => { … })`;
      return { ...outcome, code: 'SCRIPT', error };
    }
    journey = mod.default as typeof journey;
  } catch (err) {
    return { ...outcome, code: 'SCRIPT', error: `${path.basename(job.script)} did not load: ${firstLine(err)}` };
  }
  const executablePath = chromiumFor(job);
  if (executablePath === undefined) {
    return {
      ...outcome,
      code: 'BROWSER',
      error: 'no Chromium found: install the chromium package, set chromium: in the definition, or set CHROMIUM_PATH',
    };
  }
  let browser: Browser;
  try {
    // Loaded only now: Playwright takes half a second to import, which a script that fails to load need not wait.
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath,
      // --no-sandbox: vigil's container runs as a user without the namespaces Chromium's sandbox
      // needs; the pages are the operator's own sites. The rest keep Chromium quiet and off the network.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: LAUNCH_TIMEOUT_MS,
    });
  } catch (err) {
    return { ...outcome, code: 'BROWSER', error: `Chromium (${executablePath}) did not start: ${firstLine(err)}` };
  }
  try {
    // A fresh context per run: no cookies or storage carried from another run.
    const context = await browser.newContext(job.viewport ? { viewport: job.viewport } : {});
    const tracing = job.artifactsDir !== undefined;
    if (tracing) await context.tracing.start({ screenshots: true, snapshots: true });
    const page = await context.newPage();
    page.setDefaultTimeout(job.actionTimeoutMs);
    page.setDefaultNavigationTimeout(job.actionTimeoutMs);
    await page.addInitScript(VITALS_SCRIPT);
    page.on('console', (msg) => {
      if (msg.type() !== 'error' || isFavicon(msg.location().url)) return;
      outcome.consoleErrorCount++;
      push(outcome.consoleErrors, msg.text());
    });
    page.on('pageerror', (err) => {
      outcome.consoleErrorCount++;
      push(outcome.consoleErrors, `uncaught: ${firstLine(err)}`);
    });
    page.on('requestfailed', (req) => {
      if (isFavicon(req.url())) return;
      outcome.failedRequestCount++;
      push(outcome.failedRequests, `${req.method()} ${req.url()}: ${req.failure()?.errorText ?? 'failed'}`);
    });
    page.on('response', (res) => {
      if (res.status() < 500) return;
      outcome.failedRequestCount++;
      push(outcome.failedRequests, `${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
    });

    const ctx: JourneyContext = {
      env: Object.freeze({ ...job.env }),
      /** Runs `fn` as the named step: timed, and named in the message when it throws. */
      async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
        if (typeof name !== 'string' || name === '') throw new TypeError('ctx.step needs a name');
        send({ step: name });
        const t0 = performance.now();
        try {
          return await fn();
        } catch (err) {
          outcome.failedStep ??= name;
          throw err;
        } finally {
          outcome.steps[name] = Math.round((performance.now() - t0) * 10) / 10;
        }
      },
    };
    try {
      await journey(page, ctx);
      outcome.ok = true;
    } catch (err) {
      outcome.code = outcome.failedStep === undefined ? 'SCRIPT' : 'STEP';
      outcome.error = firstLine(err);
    }
    outcome.durationMs = Math.round((performance.now() - started) * 10) / 10;
    outcome.vitals = await vitals(page);
    const keep =
      !outcome.ok || outcome.consoleErrorCount > job.keepOver.consoleErrors || outcome.failedRequestCount > job.keepOver.failedRequests;
    if (tracing && job.artifactsDir !== undefined && keep) {
      outcome.artifacts = await saveArtifacts(job.artifactsDir, page, context.tracing, redactor);
    } else if (tracing) {
      await context.tracing.stop();
    }
    await context.close();
  } finally {
    await browser.close().catch(() => {});
  }
  return outcome;
}

async function vitals(page: Page): Promise<Vitals> {
  try {
    // A string, evaluated in the page: vigil compiles without the DOM's types.
    const v = (await page.evaluate(`(() => {
      const kept = globalThis.__vigilVitals;
      const nav = performance.getEntriesByType('navigation')[0];
      return { lcp: kept && kept.lcp, cls: kept && kept.cls, ttfb: nav && nav.responseStart > 0 ? nav.responseStart : undefined };
    })()`)) as { lcp?: unknown; cls?: unknown; ttfb?: unknown };
    const out: Vitals = {};
    if (typeof v.lcp === 'number') out.lcpMs = Math.round(v.lcp * 10) / 10;
    if (typeof v.cls === 'number') out.cls = Math.round(v.cls * 10_000) / 10_000;
    if (typeof v.ttfb === 'number') out.ttfbMs = Math.round(v.ttfb * 10) / 10;
    return out;
  } catch {
    // A page that crashed or was closed by the script: no vitals, the rest of the outcome stands.
    return {};
  }
}

/**
 * The screenshot, and the trace with every form of every secret removed from every entry that is
 * text (actions, DOM snapshots, network bodies): Playwright records what `fill` typed and what a
 * form posted. A trace that cannot be rewritten is not kept at all.
 */
async function saveArtifacts(
  dir: string,
  page: Page,
  tracing: { stop(o?: { path: string }): Promise<void> },
  redactor: Redactor,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const saved: string[] = [];
  try {
    await page.screenshot({ path: path.join(dir, 'screenshot.png'), timeout: SCREENSHOT_TIMEOUT_MS });
    saved.push('screenshot.png');
  } catch {
    // A crashed or hung page has no screenshot to give; the trace may still say why.
  }
  const raw = path.join(dir, '.trace-raw.zip');
  try {
    await tracing.stop({ path: raw });
    const clean = redactZip(await readFile(raw), redactor);
    await writeFile(path.join(dir, 'trace.zip'), clean);
    saved.push('trace.zip');
  } catch {
    // No trace rather than one that may hold a secret.
  } finally {
    await rm(raw, { force: true });
  }
  return saved;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function redactZip(zip: Buffer, redactor: Redactor): Buffer {
  if (redactor.size === 0) return zip;
  return writeZip(
    readZip(zip).map((e) => {
      let text: string;
      try {
        text = utf8.decode(e.data);
      } catch {
        // Not text (a JPEG frame, a font): a secret typed into a page is text where it is kept.
        return e;
      }
      const clean = redactor.text(text);
      return clean === text ? e : { name: e.name, data: Buffer.from(clean, 'utf8') };
    }),
  );
}

/** Ends the runner's group if vigil went away (crashed): no orphan browser outlives its monitor. */
function watchParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(-process.pid, 'SIGKILL');
  }, 1_000).unref();
}

async function main(): Promise<void> {
  watchParent();
  const job = await readJob();
  if (job.pidFile) {
    const record: PidRecord = { pgid: process.pid, parent: process.ppid };
    await writeFile(job.pidFile, JSON.stringify(record));
  }
  const redactor = createRedactor(job.secrets);
  let outcome: BrowserOutcome;
  try {
    outcome = await run(job, redactor);
  } catch (err) {
    outcome = { ...emptyOutcome(), code: 'BROWSER', error: `browser run failed: ${firstLine(err)}` };
  }
  send({ outcome: redactor.value(outcome) });
}

main().then(
  () => process.exit(0),
  () => process.exit(1),
);

/** A run that has not passed yet: nothing measured, nothing kept. */
function emptyOutcome(): BrowserOutcome {
  return {
    ok: false,
    steps: {},
    durationMs: 0,
    vitals: {},
    consoleErrors: [],
    consoleErrorCount: 0,
    failedRequests: [],
    failedRequestCount: 0,
    artifacts: [],
  };
}
