import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, SKIP_BROWSER, SKIP_NOTE } from '../helpers/browser.js';
import { pagesApp, VIEWER } from '../helpers/pages-fixture.js';

// Every page vigil serves to people, in headless Chromium at a phone's and a desktop's width, light
// and dark: no script, a strict CSP, no horizontal overflow on the phone, tables stacked there, and
// no serious or critical axe-core violation. Screenshots go to coverage/screenshots/pages/ (ignored by git,
// kept by CI as artifacts).

const SHOTS = path.resolve('coverage/screenshots/pages');
const AXE = path.resolve('node_modules/axe-core/axe.min.js');
const auth = { authorization: `Bearer ${VIEWER}` };
const PAGES = [
  { name: 'status-full', url: '/', headers: auth, status: 200 },
  { name: 'probe', url: '/probes/api-payments', headers: auth, status: 200 },
  { name: 'public-status', url: '/status', headers: {}, status: 200 },
  { name: 'not-found', url: '/probes/nope', headers: auth, status: 404 },
] as const;
// axe-core takes about a second a page: it runs once per width and once per colour scheme, which
// covers both (contrast depends on the scheme, reflow on the width) at half the cost of every pair.
const VIEWS = [
  { width: 390, height: 844, scheme: 'light', axe: true },
  { width: 390, height: 844, scheme: 'dark', axe: false },
  { width: 1400, height: 900, scheme: 'light', axe: false },
  { width: 1400, height: 900, scheme: 'dark', axe: true },
] as const;

interface AxeResult {
  violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }>;
}

async function axe(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  // Only violations are wanted: axe then skips building the passes and incomplete lists.
  const result = (await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")) as AxeResult;
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')})`);
}

describe.skipIf(SKIP_BROWSER)(`pages in Chromium${SKIP_NOTE}`, () => {
  let f: Awaited<ReturnType<typeof pagesApp>>;
  let base: string;
  let browser: Browser;
  beforeAll(async () => {
    f = await pagesApp();
    base = await f.app.server.listen({ host: '127.0.0.1', port: 0 });
    const executablePath = chromiumPath();
    if (!executablePath) throw new Error('no Chromium found: install chromium or set CHROMIUM_PATH');
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking'],
    });
    await mkdir(SHOTS, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await f?.close();
  });

  for (const p of PAGES) {
    it(`${p.url} loads under its own CSP with no script, no console error and no request failed`, async () => {
      const context = await browser.newContext({ extraHTTPHeaders: p.headers, viewport: { width: 390, height: 844 } });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('requestfailed', (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
        const res = await page.goto(`${base}${p.url}`, { waitUntil: 'load' });
        expect(res?.status()).toBe(p.status);
        const csp = res?.headers()['content-security-policy'] ?? '';
        expect(csp).toMatch(
          /^default-src 'none'; style-src 'sha256-[^']+'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
        );
        expect(await page.locator('script').count()).toBe(0);
        expect(await page.locator('[style],[onload],[onerror],[onclick]').count()).toBe(0);
        // Chromium logs every 404 document it loads; that line is the status, not a fault of the page.
        expect(errors.filter((e) => p.status !== 404 || !/status of 404/.test(e))).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }

  for (const v of VIEWS) {
    it(`at ${v.width} px, ${v.scheme}: fits the width, stacks tables on a phone${v.axe ? ', no serious axe violation' : ''}`, async () => {
      // bypassCSP only so axe-core can be injected; the test above holds the page to its own CSP.
      const context = await browser.newContext({ viewport: { width: v.width, height: v.height }, colorScheme: v.scheme, bypassCSP: true });
      try {
        for (const p of PAGES) {
          await context.setExtraHTTPHeaders(p.headers);
          const page = await context.newPage();
          const res = await page.goto(`${base}${p.url}`, { waitUntil: 'load' });
          expect(res?.status(), p.url).toBe(p.status);
          await page.screenshot({ path: path.join(SHOTS, `${p.name}-${v.width}-${v.scheme}.png`), fullPage: true });
          const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
          expect(width, `${p.url} scrollWidth`).toBeLessThanOrEqual(v.width);
          const cells = (await page.evaluate("[...document.querySelectorAll('td')].map((td) => getComputedStyle(td).display)")) as string[];
          if (p.name !== 'not-found') expect(cells.length, p.url).toBeGreaterThan(0);
          expect(new Set(cells), p.url).toEqual(new Set(cells.length === 0 ? [] : [v.width < 600 ? 'block' : 'table-cell']));
          // Words break only where they must: `anywhere` is for URLs and the definition's code alone.
          const anywhere = (await page.evaluate(
            "[...document.querySelectorAll('body *')].filter((e) => getComputedStyle(e).overflowWrap === 'anywhere' && !e.closest('.url, pre')).map((e) => e.tagName + '.' + e.className)",
          )) as string[];
          expect(anywhere, p.url).toEqual([]);
          if (v.axe) expect(await axe(page), `${p.url} at ${v.width} px, ${v.scheme}`).toEqual([]);
          await page.close();
        }
        if (v.axe && v.width === 390) {
          // The check can fail: a wall-screen reload (`/?refresh=30`) is exactly what axe refuses.
          await context.setExtraHTTPHeaders(auth);
          const page = await context.newPage();
          await page.goto(`${base}/?refresh=30`, { waitUntil: 'load' });
          expect((await axe(page)).map((v) => v.split(':')[0])).toEqual(['critical meta-refresh']);
          await page.close();
        }
      } finally {
        await context.close();
      }
    });
  }
});
