import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';
import { expect } from 'vitest';
import type { RenderedPage } from '../../src/report/types.js';
import { startHttp } from './servers.js';

/** What a page did while it loaded in headless Chromium; `close()` ends the browser. */
export interface BrowserVisit {
  title: string;
  /** Console messages of type error, CSP violations included. */
  consoleErrors: string[];
  /** Uncaught exceptions thrown by the page. */
  pageErrors: string[];
  /** The console errors that report a Content Security Policy violation. */
  cspViolations: string[];
  /** `<url>: <reason>` for every request that failed. */
  failedRequests: string[];
  /** `<svg>` elements in the rendered DOM. */
  svgCount: number;
  /** The body's rendered text (`innerText`). */
  text: string;
  close(): Promise<void>;
}

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const LAUNCH_TIMEOUT_MS = 30_000;
const NAVIGATION_TIMEOUT_MS = 30_000;

/** The system Chromium to drive (env `CHROMIUM_PATH` first), or undefined when there is none. */
export function chromiumPath(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * Browser tests skip only where there is no Chromium and CI is not set; under CI they run, and
 * openInBrowser fails loudly without one, so a missing package never passes silently.
 */
export const SKIP_BROWSER = chromiumPath() === undefined && !process.env.CI;
/** Appended to a browser test's title when it skips, saying why. */
export const SKIP_NOTE = SKIP_BROWSER ? ' (skipped: no Chromium; apt-get install chromium or set CHROMIUM_PATH)' : '';

/**
 * Opens `url` in a fresh headless Chromium and reports what went wrong on the way: console errors,
 * CSP violations, page errors, failed requests. Optionally saves a full-page screenshot.
 */
export async function openInBrowser(url: string, opts: { screenshot?: string } = {}): Promise<BrowserVisit> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('no Chromium found (CI is set, so browser tests must run): install chromium or set CHROMIUM_PATH');
  // --no-sandbox: tests run as root in containers, where Chromium refuses to start sandboxed.
  // --disable-dev-shm-usage: container /dev/shm is often 64 MB, too small for the renderer.
  const browser = await chromium.launch({
    executablePath,
    // The rest keep Chromium off the network (this machine refuses it, loudly) and quiet.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: LAUNCH_TIMEOUT_MS,
  });
  try {
    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    const pageErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('requestfailed', (req) => failedRequests.push(`${req.url()}: ${req.failure()?.errorText ?? 'failed'}`));

    await page.goto(url, { waitUntil: 'load', timeout: NAVIGATION_TIMEOUT_MS });
    if (opts.screenshot) {
      await mkdir(dirname(opts.screenshot), { recursive: true });
      await page.screenshot({ path: opts.screenshot, fullPage: true });
    }
    const title = await page.title();
    const svgCount = await page.locator('svg').count();
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText, wanted for what a person sees (textContent would add every SVG tooltip)
    const text = await page.locator('body').innerText();
    return {
      title,
      consoleErrors,
      pageErrors,
      // A getter, so a violation logged after load (a late resource) is not missed.
      get cspViolations() {
        return consoleErrors.filter((m) => /content security policy/i.test(m));
      },
      failedRequests,
      svgCount,
      text,
      close: () => browser.close(),
    };
  } catch (err) {
    await browser.close();
    throw err;
  }
}

/**
 * Serves one rendered page with its Content-Security-Policy from a loopback server and opens it;
 * closing the visit closes both.
 */
export async function openRendered(page: RenderedPage, opts: { screenshot?: string } = {}): Promise<BrowserVisit> {
  const server = await startHttp((_req, res) => {
    res.writeHead(200, { 'content-security-policy': page.csp, 'content-type': 'text/html; charset=utf-8' });
    res.end(page.body);
  });
  try {
    const visit = await openInBrowser(`${server.url}/`, opts);
    return {
      ...visit,
      close: async () => {
        await visit.close();
        await server.close();
      },
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** A page that loaded without a console error, a CSP violation, a page error or a failed request. */
export function expectCleanLoad(visit: BrowserVisit): void {
  expect(visit.consoleErrors).toEqual([]);
  expect(visit.cspViolations).toEqual([]);
  expect(visit.pageErrors).toEqual([]);
  expect(visit.failedRequests).toEqual([]);
}
