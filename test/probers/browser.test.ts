import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { artifactKey, pruneArtifacts } from '../../src/lib/artifacts.js';
import { createRedactor } from '../../src/lib/redactor.js';
import { browser, sweepStale } from '../../src/probers/browser.js';
import type { ProbeContext } from '../../src/probers/index.js';
import { createHousekeeping } from '../../src/store/index.js';
import { SKIP_BROWSER, SKIP_NOTE } from '../helpers/browser.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger, probeContext } from '../helpers/context.js';
import { startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

// Real headless Chromium driven by real scripts against a small local web app: a login form, a
// page that loads its data with fetch, a page that logs a console error, a page that never answers.

const GOOD_PASSWORD = 'c0rrect-H0rse-Battery-5512';
/** Typed into the password field by the wrong-password journey, through `${…}` as a user would. */
const PLANTED = 'Wr0ng-Planted-Secret-4417';

const JOURNEY = `
export default async (page, ctx) => {
  await ctx.step('open login', async () => {
    await page.goto(ctx.env.BASE + '/login');
  });
  await ctx.step('log in', async () => {
    await page.fill('#user', 'ada');
    await page.fill('#password', ctx.env.PASSWORD);
    await page.click('#submit');
    await page.waitForSelector('#items li', { timeout: 1500 });
  });
};
`;
const BROKEN = `export default async (page, ctx) => { await ctx.step('open', () => page.goto(ctx.env.BASE + '/broken')); };`;
// Writes its own pid (the runner's, its process group's id) so the test can look for survivors,
// and the names in its environment.
const HANG = `
import { writeFileSync } from 'node:fs';
export default async (page, ctx) => {
  writeFileSync(ctx.env.PID_FILE, JSON.stringify({ pid: process.pid, env: Object.keys(process.env) }));
  await ctx.step('open hanging page', () => page.goto(ctx.env.BASE + '/hang', { timeout: 0 }));
};
`;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', () => resolve(text));
  });
}

const html = (inner: string) => `<!doctype html><html><head><title>shop</title></head><body>${inner}</body></html>`;

/** The shop: log in, then a page that fetches its orders; a broken page; a page that hangs. */
async function startShop(): Promise<TestServer & { hung: () => number }> {
  let hung = 0;
  const server = await startHttp((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
      res.end(text);
    };
    if (url.pathname === '/login' && req.method === 'GET') {
      send(
        200,
        html(
          '<h1>Log in</h1><form method="post" action="/login"><input id="user" name="user">' +
            '<input id="password" name="password" type="password"><button id="submit">Log in</button></form>',
        ),
      );
    } else if (url.pathname === '/login') {
      void body(req).then((text) => {
        const form = new URLSearchParams(text);
        if (form.get('user') === 'ada' && form.get('password') === GOOD_PASSWORD) {
          send(303, '', { location: '/orders', 'set-cookie': 'session=ok; HttpOnly' });
        } else send(401, html('<p id="error">Wrong user name or password</p>'));
      });
    } else if (url.pathname === '/orders') {
      if (!req.headers.cookie?.includes('session=ok')) send(303, '', { location: '/login' });
      else
        send(
          200,
          html(
            '<h1>Your orders</h1><ul id="items"></ul><script>fetch("/api/orders").then((r) => r.json()).then((xs) => {' +
              'for (const x of xs) { const li = document.createElement("li"); li.textContent = x; document.getElementById("items").append(li); } });</script>',
          ),
        );
    } else if (url.pathname === '/api/orders') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(['order 1', 'order 2']));
    } else if (url.pathname === '/broken') {
      send(200, html('<h1>Broken</h1><script>console.error("widget failed to load")</script>'));
    } else if (url.pathname === '/hang') {
      hung++;
    } else send(404, html('not found'));
  });
  return Object.assign(server, { hung: () => hung });
}

/** Pids of live processes in group `pgid`, read from /proc. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // state ppid pgrp …: a zombie is dead already, waiting for its parent.
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

/** Every file of a ZIP, decompressed and concatenated, by the system unzip (not vigil's reader). */
const unzipped = (file: string) => execFileSync('unzip', ['-p', file], { maxBuffer: 256 * 1024 * 1024 });

describe.skipIf(SKIP_BROWSER)(`browser probe kind${SKIP_NOTE}`, () => {
  let shop: Awaited<ReturnType<typeof startShop>>;
  let ws: ReturnType<typeof workspace>;
  const probes = () => path.join(ws.dir, 'probes');
  const data = () => path.join(ws.dir, 'data');

  beforeAll(async () => {
    shop = await startShop();
    ws = workspace({
      'probes/browser/journey.js': JOURNEY,
      'probes/browser/broken.js': BROKEN,
      'probes/browser/hang.js': HANG,
    });
  });
  afterAll(async () => {
    await shop?.close();
    ws?.remove();
  });

  const context = (timeoutMs: number, secrets: string[] = []): ProbeContext => ({
    ...probeContext(timeoutMs, { probesDir: probes() }),
    dataDir: data(),
    redactor: createRedactor(secrets),
  });
  const spec = (script: string, env: Record<string, string>, extra: Record<string, unknown> = {}) =>
    ({
      id: 'journey',
      kind: 'browser',
      script,
      env,
      expect: { maxConsoleErrors: 0, maxFailedRequests: 0, steps: {} },
      ...extra,
    }) as never;

  it('walks a passing journey: step timings, Web Vitals and no artifacts', async () => {
    const result = await browser.probe(
      spec(
        'browser/journey.js',
        { BASE: shop.url, PASSWORD: GOOD_PASSWORD },
        {
          expect: { maxConsoleErrors: 0, maxFailedRequests: 0, lcp: '10s', steps: { 'log in': { maxDuration: '10s' } } },
        },
      ),
      context(20_000, [GOOD_PASSWORD]),
    );
    expect(result.message).toBeUndefined();
    expect(result.ok).toBe(true);
    const v = result.values;
    expect(v.step_open_login_ms).toBeGreaterThan(0);
    expect(v.step_log_in_ms).toBeGreaterThan(0);
    expect(v.duration_ms).toBeGreaterThanOrEqual((v.step_open_login_ms ?? 0) + (v.step_log_in_ms ?? 0));
    expect(v.lcp_ms).toBeGreaterThan(0);
    expect(v.ttfb_ms).toBeGreaterThan(0);
    expect(v.cls).toBe(0);
    expect(v).toMatchObject({ console_errors: 0, failed_requests: 0 });
    expect(result.details?.artifacts).toBeUndefined();
  });

  it('fails a page with a console error, with the count, and keeps its screenshot', async () => {
    const result = await browser.probe(spec('browser/broken.js', { BASE: shop.url }), context(20_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION', values: { console_errors: 1 } });
    expect(result.message).toContain('1 console error(s), at most 0 allowed: widget failed to load');
    expect(result.details?.artifacts).toMatchObject({ files: ['screenshot.png', 'trace.zip'] });
  });

  it('kills the runner and Chromium, its whole process group, at the deadline of a hanging page', async () => {
    const pidFile = path.join(ws.dir, 'hang.pid');
    // vigil's own environment (a database URL, a token) is not the script's.
    process.env.VIGIL_TEST_DB_URL = 'postgres://vigil:pw@db/vigil';
    const controller = new AbortController();
    const ctx = { ...context(20_000), signal: controller.signal };
    const run = browser.probe(spec('browser/hang.js', { BASE: shop.url, PID_FILE: pidFile }), ctx);
    // Chromium is up and waiting on the page: now the deadline.
    await waitFor('Chromium asks for the hanging page', () => shop.hung() > 0, 15_000);
    const seen = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number; env: string[] };
    delete process.env.VIGIL_TEST_DB_URL;
    expect(seen.env).toContain('PATH');
    expect(seen.env).not.toContain('VIGIL_TEST_DB_URL');
    const pgid = seen.pid;
    expect(groupMembers(pgid).length).toBeGreaterThan(1);
    controller.abort();
    const result = await run;
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(/timed out after .* during step 'open hanging page': the runner and Chromium were killed/);
    await waitFor('the process group is gone', () => groupMembers(pgid).length === 0, 3_000);
    expect(readdirSync(path.join(data(), 'browser'))).toEqual([]);
  });

  it('kills a browser left over by a vigil that died, and leaves alone a pid reused by something else', async () => {
    const dir = path.join(ws.dir, 'stale');
    await mkdir(dir, { recursive: true });
    // A dead vigil: a process that has exited.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    const leftover = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '--vigil-browser-runner'], {
      detached: true,
      stdio: 'ignore',
    });
    const stranger = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    try {
      writeFileSync(path.join(dir, `${leftover.pid}.json`), JSON.stringify({ pgid: leftover.pid, parent: gone.pid }));
      writeFileSync(path.join(dir, `${stranger.pid}.json`), JSON.stringify({ pgid: stranger.pid, parent: gone.pid }));
      const { logger, lines } = memoryLogger();
      expect(await sweepStale(dir, { logger })).toBe(1);
      await waitFor('the leftover group is gone', () => groupMembers(leftover.pid as number).length === 0, 3_000);
      expect(groupMembers(stranger.pid as number)).toEqual([stranger.pid]);
      expect(readdirSync(dir)).toEqual([]);
      expect(lines.some((l) => l.msg === 'killed a browser left over by a vigil that stopped mid-run')).toBe(true);
    } finally {
      stranger.kill('SIGKILL');
      leftover.kill('SIGKILL');
    }
  });

  it('prunes artifact folders with the failed runs: housekeeping removes those of runs past their retention', async () => {
    const root = path.join(ws.dir, 'prune');
    const clock = new ManualClock();
    const DAY = 86_400_000;
    const old = path.join(root, 'artifacts', 'p', artifactKey(clock.now() - 91 * DAY, 'aaaaaaaa'));
    const fresh = path.join(root, 'artifacts', 'p', artifactKey(clock.now() - 89 * DAY, 'bbbbbbbb'));
    await mkdir(old, { recursive: true });
    await mkdir(fresh, { recursive: true });
    const runsPrunedBefore: number[] = [];
    const housekeeping = createHousekeeping({
      store: {
        prune: async (before, keep) => {
          runsPrunedBefore.push(before, keep?.failedBefore ?? Number.NaN);
          return 0;
        },
        audit: { prune: async () => 0 } as never,
      },
      clock,
      logger: memoryLogger().logger,
      everyMs: 3_600_000,
      // Artifacts belong to failed runs: they follow failedRuns (90 days here), not the 3 days of ok runs.
      retention: () => ({ runsMs: 3 * DAY, failedRunsMs: 90 * DAY, auditMs: 400 * DAY, reportDays: 30 }),
      pruneArtifacts: (before) => pruneArtifacts(root, before),
    });
    housekeeping.start();
    try {
      await waitFor("the old run's artifacts to go", () => !existsSync(old), 3_000);
    } finally {
      housekeeping.stop();
    }
    expect(runsPrunedBefore).toEqual([clock.now() - 3 * DAY, clock.now() - 90 * DAY]);
    expect(existsSync(fresh)).toBe(true);
  });

  describe('a wrong password, through the real app', () => {
    let app: App;
    let appWs: ReturnType<typeof workspace>;
    let log: ReturnType<typeof memoryLogger>;
    let hook: Awaited<ReturnType<typeof target>>;
    const pages: Array<{ text: string }> = [];
    const VIEWER = 'viewer-token-0123456789abcdef';

    beforeAll(async () => {
      hook = await target((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          pages.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          res.end('ok');
        });
      });
      appWs = workspace({
        'config/default.yaml': `
service: { name: shop, host: 127.0.0.1, port: 0 }
storage: { sqlite: { path: ./data/vigil.db } }
auth: { reads: token, tokens: [{ name: dana, token: "\${VIEWER}", role: viewer }] }
alerting: { baseUrl: "http://vigil.example", delivery: { pollInterval: 100ms } }
channels: { hook: { type: webhook, url: "${hook.url}/hook" } }
`,
        'probes/login.yaml': `
- id: login
  kind: browser
  schedule: "0 0 1 1 *"
  timeout: 20s
  script: browser/journey.js
  env: { BASE: "${shop.url}", PASSWORD: "\${SHOP_PASSWORD}" }
  alert: { failures: 1, channels: [hook] }
`,
        'probes/browser/journey.js': JOURNEY,
      });
      log = memoryLogger();
      app = createApp({ config: loadConfig({ cwd: appWs.dir, env: { VIEWER, SHOP_PASSWORD: PLANTED } }), logger: log.logger });
      await app.start();
    });
    afterAll(async () => {
      await app?.stop();
      await hook?.close();
      appWs?.remove();
    });

    it('names the failing step, saves a screenshot and a trace, serves them, and the secret is in none of it', async () => {
      const record = await app.scheduler.runNow('login');
      expect(record).toMatchObject({ ok: false, code: 'STEP' });
      expect(record.message).toMatch(/^step 'log in' failed: .*Timeout 1500ms exceeded/);
      expect(record.values.step_open_login_ms).toBeGreaterThan(0);

      const auth = { authorization: `Bearer ${VIEWER}` };
      const runs = await app.server.inject({ url: '/api/v1/probes/login/runs', headers: auth });
      const run = runs.json().runs[0] as { id: number; details: { artifacts: { files: string[] } } };
      expect(run.details.artifacts.files).toEqual(['screenshot.png', 'trace.zip']);

      // The probe's page links both files of the failed run.
      const page = await app.server.inject({ url: '/probes/login', headers: auth });
      expect(page.body).toContain(`<a href="/api/v1/runs/${run.id}/artifacts/screenshot.png">screenshot.png</a>`);
      expect(page.body).toContain(`<a href="/api/v1/runs/${run.id}/artifacts/trace.zip">trace.zip</a>`);

      const shot = await app.server.inject({ url: `/api/v1/runs/${run.id}/artifacts/screenshot.png`, headers: auth });
      expect(shot.statusCode).toBe(200);
      expect(shot.headers['content-type']).toBe('image/png');
      expect(shot.rawPayload.subarray(1, 4).toString()).toBe('PNG');
      const trace = await app.server.inject({ url: `/api/v1/runs/${run.id}/artifacts/trace.zip`, headers: auth });
      expect(trace.statusCode).toBe(200);
      expect(trace.headers['content-type']).toBe('application/zip');
      // Reads need the viewer role; names the run did not list, or that climb out, are not found.
      expect((await app.server.inject({ url: `/api/v1/runs/${run.id}/artifacts/trace.zip` })).statusCode).toBe(401);
      for (const name of ['vigil.db', '..%2F..%2Fvigil.db', '.trace-raw.zip', '__proto__']) {
        const res = await app.server.inject({ url: `/api/v1/runs/${run.id}/artifacts/${name}`, headers: auth });
        expect(res.statusCode, name).toBe(404);
      }
      expect((await app.server.inject({ url: `/api/v1/runs/${run.id + 1}/artifacts/trace.zip`, headers: auth })).statusCode).toBe(404);

      // The planted secret, typed into the page and posted by its form: in no output.
      const traceFile = path.join(appWs.dir, 'trace.zip');
      writeFileSync(traceFile, trace.rawPayload);
      const contents = unzipped(traceFile);
      expect(contents.length).toBeGreaterThan(10_000);
      // The trace recorded the typing (the action is there), not what was typed.
      expect(contents.includes('#password')).toBe(true);
      for (const form of [PLANTED, encodeURIComponent(PLANTED), Buffer.from(PLANTED).toString('base64')]) {
        expect(contents.includes(form), form).toBe(false);
        expect(shot.rawPayload.includes(form)).toBe(false);
      }
      expect(JSON.stringify(record)).not.toContain(PLANTED);
      expect(runs.body).not.toContain(PLANTED);
      expect(JSON.stringify(log.lines)).not.toContain(PLANTED);
    });

    it("pages with a link to the failing run's screenshot, served by the run's key", async () => {
      const auth = { authorization: `Bearer ${VIEWER}` };
      await waitFor('the page of the opened incident', () => pages.length > 0, 10_000);
      const runs = await app.server.inject({ url: '/api/v1/probes/login/runs', headers: auth });
      const key = (runs.json().runs.at(-1) as { details: { artifacts: { key: string } } }).details.artifacts.key;
      const link = `http://vigil.example/api/v1/probes/login/artifacts/${key}/screenshot.png`;
      expect(pages[0]?.text).toContain(`Screenshot: ${link}`);
      const incidents = await app.server.inject({ url: '/api/v1/incidents', headers: auth });
      expect(incidents.json().incidents[0].lastError.artifacts).toEqual({ key, files: ['screenshot.png', 'trace.zip'] });

      const shot = await app.server.inject({ url: link.slice('http://vigil.example'.length), headers: auth });
      expect(shot.statusCode).toBe(200);
      expect(shot.headers['content-type']).toBe('image/png');
      expect((await app.server.inject({ url: link.slice('http://vigil.example'.length) })).statusCode).toBe(401);
      // Only a key and a name of the shapes vigil makes, under a probe id that is not a path step.
      for (const url of [
        `/api/v1/probes/login/artifacts/${key}/vigil.db`,
        `/api/v1/probes/login/artifacts/..%2F..%2F/screenshot.png`,
        `/api/v1/probes/..%2Fdata/artifacts/${key}/screenshot.png`,
        `/api/v1/probes/../artifacts/${key}/screenshot.png`,
        `/api/v1/probes/other/artifacts/${key}/screenshot.png`,
        `/api/v1/probes/login/artifacts/1000000000000-aaaaaaaa/screenshot.png`,
      ]) {
        // 404, or 400 where the id fails its pattern before any lookup.
        expect([400, 404], url).toContain((await app.server.inject({ url, headers: auth })).statusCode);
      }
    });
  });
});

describe('browser example definitions', () => {
  const REPO = path.resolve(import.meta.dirname, '../..');

  it('probes/examples/browser.yaml validates, and its script loads and exports a journey', async () => {
    const defs = parse(readFileSync(path.join(REPO, 'probes/examples/browser.yaml'), 'utf8')) as unknown[];
    expect(defs.length).toBeGreaterThan(0);
    const schema = definitionSchema(browser.schema);
    for (const raw of defs) {
      const value = Value.Convert(schema, Value.Default(schema, structuredClone(raw)));
      expect([...Value.Errors(schema, value)].map((e) => `${e.path} ${e.message}`)).toEqual([]);
      const spec = value as Parameters<typeof browser.probe>[0];
      expect(browser.check?.(spec)).toEqual([]);
      const mod = (await import(pathToFileURL(path.join(REPO, 'probes', spec.script)).href)) as { default?: unknown };
      expect(typeof mod.default).toBe('function');
    }
  });

  it('refuses a script outside probes/ or not JavaScript, naming the field', () => {
    const base = { id: 'x', kind: 'browser', env: {}, expect: { maxConsoleErrors: 0, maxFailedRequests: 0, steps: {} } } as const;
    expect(browser.check?.({ ...base, script: '../etc/x.js' } as never)).toEqual([
      { path: 'script', message: 'expected a path inside probes/ (no absolute path, no ".."), got "../etc/x.js"' },
    ]);
    expect(browser.check?.({ ...base, script: 'browser/login.ts' } as never)?.[0]?.path).toBe('script');
  });
});
