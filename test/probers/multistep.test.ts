import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, createSecretBook, loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/lib/clock.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { multistep } from '../../src/probers/multistep.js';
import { runProbe, Shutdown } from '../../src/scheduler/index.js';
import { memoryLogger, memoryState, probeContext } from '../helpers/context.js';
import { startHttp } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

type Spec = Parameters<typeof multistep.probe>[0];

const PASSWORD = 'Corr3ct-Horse-Battery-9';

/**
 * How the app misbehaves: /api/orders answers a 500, the wrong JSON shape, never, or with the token it
 * got; or the login page echoes the form it was sent.
 */
type Mode = 'ok' | '500' | 'shape' | 'hang' | 'echo' | 'echo login';

/**
 * The application under test: `POST /login` takes `{user, password}` and answers `{token}` with a
 * session cookie; `GET /api/orders` wants both the bearer token and that cookie.
 */
function startShop() {
  const sessions = new Map<string, string>(); // token → session id
  const seen: Array<{ method: string; url: string; authorization?: string; cookie?: string; requestId?: string; body: string }> = [];
  const hanging = new Set<Socket>();
  let mode: Mode = 'ok';
  const server = startHttp((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      const { authorization, cookie } = req.headers;
      const requestId = req.headers['x-request-id'];
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        ...(authorization ? { authorization } : {}),
        ...(cookie ? { cookie } : {}),
        ...(typeof requestId === 'string' ? { requestId } : {}),
        body,
      });
      const json = (status: number, doc: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(doc));
      if (req.method === 'POST' && req.url === '/login') {
        if (mode === 'echo login') return res.writeHead(200, { 'content-type': 'text/plain' }).end(`you sent ${body}`);
        const form = JSON.parse(body || '{}') as { user?: string; password?: string };
        if (form.password !== PASSWORD) return json(401, { error: 'wrong user or password' });
        const token = `tok-${randomBytes(12).toString('hex')}`;
        const sid = randomBytes(8).toString('hex');
        sessions.set(token, sid);
        return json(200, { token }, { 'set-cookie': `sid=${sid}; Path=/; HttpOnly`, 'x-request-id': 'req-4242' });
      }
      if (req.url?.startsWith('/api/orders')) {
        const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1] ?? '';
        if (mode === 'echo') return res.writeHead(403, { 'content-type': 'text/plain' }).end(`token ${token} is not allowed here`);
        const sid = sessions.get(token);
        if (sid === undefined || cookie !== `sid=${sid}`) return json(401, { error: 'not logged in' });
        if (mode === 'hang') {
          hanging.add(req.socket);
          req.socket.on('close', () => hanging.delete(req.socket));
          return;
        }
        if (mode === '500') return json(500, { error: 'database is down' });
        if (req.url === '/api/orders/17') return json(200, { id: 17, state: 'shipped' });
        if (mode === 'shape') return json(200, { items: [] });
        return json(200, { orders: [{ id: 17 }, { id: 18 }], count: 2 });
      }
      json(404, { error: 'no such page' });
    });
  });
  return {
    server,
    seen,
    hanging,
    tokens: () => [...sessions.keys()],
    set mode(m: Mode) {
      mode = m;
    },
  };
}

const shop = startShop();
const base = (await shop.server).url;
afterAll(async () => {
  await (await shop.server).close();
});
beforeEach(() => {
  shop.mode = 'ok';
  shop.seen.length = 0;
});

/** Log in, list the orders with the token and the session cookie, read the first one by the id found. */
function journey(password = PASSWORD, more: Record<string, unknown> = {}): Array<Record<string, unknown>> {
  return [
    {
      name: 'login',
      url: `${base}/login`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'probe', password }),
      expect: { status: 200 },
      extract: { token: { json: 'token' }, request: { header: 'X-Request-Id' }, sid: { regex: '"token":"tok-([0-9a-f]+)"' } },
      ...more,
    },
    {
      name: 'get orders',
      url: `${base}/api/orders?after={{steps.login.sid}}`,
      headers: { authorization: 'Bearer {{steps.login.token}}', 'x-request-id': '{{steps.login.request}}' },
      expect: { json: { count: { gte: 1 } } },
      extract: { first: { json: 'orders.0.id' } },
    },
    {
      name: 'order detail',
      url: `${base}/api/orders/{{steps.get orders.first}}`,
      headers: { authorization: 'Bearer {{steps.login.token}}' },
      expect: { json: { state: 'shipped' } },
    },
  ];
}

function definition(steps: unknown[]): Spec {
  const schema = definitionSchema(multistep.schema);
  const def = Value.Default(schema, structuredClone({ id: 'shop', kind: 'multistep', schedule: '* * * * *', steps }));
  const error = Value.Errors(schema, def).First();
  if (error) throw new Error(`invalid test definition: ${error.path} ${error.message}`);
  const problems = multistep.check?.(def as Spec) ?? [];
  if (problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify(problems)}`);
  return def as Spec;
}

const run = (steps: unknown[], timeoutMs = 5_000) => multistep.probe(definition(steps), probeContext(timeoutMs));

describe('multistep', () => {
  it('passes a login-then-API journey, with a value per step, the total and the steps passed', async () => {
    const r = await run(journey());
    expect(r.message).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.values.steps_passed).toBe(3);
    for (const v of ['step_login_ms', 'step_get_orders_ms', 'step_order_detail_ms', 'duration_ms'])
      expect(r.values[v]).toBeGreaterThanOrEqual(0);
    expect(r.values.duration_ms).toBeGreaterThanOrEqual(r.values.step_login_ms! + r.values.step_get_orders_ms!);
    expect(multistep.values(definition(journey()))).toEqual([
      'duration_ms',
      'steps_passed',
      'step_login_ms',
      'step_get_orders_ms',
      'step_order_detail_ms',
    ]);
    expect(r.details?.steps).toEqual([
      expect.objectContaining({ name: 'login', ok: true, status: 200 }),
      expect.objectContaining({ name: 'get orders', ok: true, status: 200 }),
      expect.objectContaining({ name: 'order detail', ok: true, status: 200 }),
    ]);
    const [token] = shop.tokens().slice(-1);
    expect(shop.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /login',
      `GET /api/orders?after=${token?.slice(4)}`, // the regex's group 1
      'GET /api/orders/17', // the JSON path's number, into the path
    ]);
    expect(shop.seen[1]?.requestId).toBe('req-4242'); // the header
  });

  it('carries the extracted token and the session cookie to the later steps', async () => {
    await run(journey());
    const [token] = shop.tokens().slice(-1);
    const [login, orders, detail] = shop.seen;
    expect(login?.cookie).toBeUndefined();
    expect(orders?.authorization).toBe(`Bearer ${token}`);
    expect(detail?.authorization).toBe(`Bearer ${token}`);
    expect(orders?.cookie).toMatch(/^sid=[0-9a-f]{16}$/);
    expect(detail?.cookie).toBe(orders?.cookie);
    // One jar per run: the next run logs in afresh and sends no cookie of the last one at first.
    await run(journey());
    expect(shop.seen[3]?.cookie).toBeUndefined();
  });

  it('names the failing step on a wrong password and runs no later step', async () => {
    const r = await run(journey('wrong-password'));
    expect(r.ok).toBe(false);
    expect(r.code).toBe('HTTP_STATUS');
    expect(r.message).toBe("step 'login' (1 of 3): 401 Unauthorized (expected 200)");
    expect(r.values.steps_passed).toBe(0);
    expect(r.values.step_login_ms).toBeGreaterThanOrEqual(0);
    expect(r.values).not.toHaveProperty('step_get_orders_ms');
    expect(shop.seen.map((s) => s.url)).toEqual(['/login']);
  });

  it('names the broken step of a broken app: a 500, then a wrong JSON shape', async () => {
    shop.mode = '500';
    const down = await run(journey());
    expect(down.code).toBe('HTTP_STATUS');
    expect(down.message).toBe("step 'get orders' (2 of 3): 500 Internal Server Error (expected 2xx)");
    expect(down.values.steps_passed).toBe(1);
    expect(down.details?.steps).toEqual([
      expect.objectContaining({ name: 'login', ok: true }),
      expect.objectContaining({ name: 'get orders', ok: false, status: 500, code: 'HTTP_STATUS' }),
    ]);
    shop.mode = 'shape';
    const shape = await run(journey());
    expect(shape.code).toBe('ASSERTION');
    expect(shape.message).toBe("step 'get orders' (2 of 3): JSON count is missing, expected a number >= 1");
    expect(shop.seen.filter((s) => s.url === '/api/orders/17')).toEqual([]);
  });

  it('fails the step whose value cannot be extracted, saying which and why', async () => {
    const steps = journey();
    steps[1] = { ...steps[1], expect: {}, extract: { first: { json: 'orders.9.id' } } };
    const r = await run(steps);
    expect(r.code).toBe('ASSERTION');
    expect(r.message).toBe(
      "step 'get orders' (2 of 3): cannot extract first: JSON orders.9.id is nothing (expected a text, a number or a boolean)",
    );
  });

  it('ends a hanging step at the journey deadline, naming it, and leaves no connection open', async () => {
    shop.mode = 'hang';
    const started = performance.now();
    const r = await run(journey(), 1_000);
    const took = performance.now() - started;
    expect(r.code).toBe('TIMEOUT');
    expect(r.message).toMatch(
      /^step 'get orders' \(2 of 3\): timed out after [\d.]+m?s waiting for response headers; the journey's deadline passed after/,
    );
    expect(r.values.steps_passed).toBe(1);
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2_500);
    await waitFor('the app to see the hung request closed', () => shop.hanging.size === 0, 2_000);
  });

  it('never shows an extracted token, even when the app echoes it into a failure', async () => {
    shop.mode = 'echo';
    const r = await run(journey());
    expect(r.code).toBe('HTTP_STATUS');
    const steps = journey();
    steps[1] = { ...steps[1], expect: { status: 403, bodyContains: 'welcome' } };
    const quoted = await run(steps);
    expect(quoted.code).toBe('ASSERTION');
    // The body the check quotes held the token; the message shows where it was, not what it was.
    expect(quoted.message).toMatch(/^step 'get orders' \(2 of 3\): body does not contain "welcome": "token <secret> is not allowed here"$/);
    const text = JSON.stringify(quoted);
    for (const token of shop.tokens()) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.slice(4, 16));
    }
  });
});

describe('multistep definitions', () => {
  const ws = workspace({});
  afterAll(() => ws.remove());

  /** Loads steps through the real config path; the problems, or the definition. */
  function load(steps: unknown[], env: Record<string, string> = {}) {
    writeFileSync(path.join(ws.dir, 'config', 'default.yaml'), 'service:\n  port: 8080\n');
    writeFileSync(path.join(ws.dir, 'probes', 'shop.yaml'), stringify([{ id: 'shop', kind: 'multistep', schedule: '* * * * *', steps }]));
    try {
      return { loaded: loadConfig({ cwd: ws.dir, env }), problems: [] as readonly string[] };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return { problems: err.problems };
    }
  }

  it('loads the journey', () => {
    expect(load(journey()).problems).toEqual([]);
  });

  it('loads probes/examples/multistep.yaml offline, its passwords from the environment', () => {
    const example = readFileSync(path.resolve(import.meta.dirname, '../../probes/examples/multistep.yaml'), 'utf8');
    writeFileSync(path.join(ws.dir, 'config', 'default.yaml'), 'service:\n  port: 8080\n');
    writeFileSync(path.join(ws.dir, 'probes', 'shop.yaml'), example);
    const config = loadConfig({ cwd: ws.dir, env: { SHOP_PROBE_PASSWORD: 'shop-pass-1', APP_PROBE_PASSWORD: 'app-pass-2' } });
    expect(config.probes.map((p) => p.id)).toEqual(['shop-journey', 'account-page']);
    const [journey] = config.probes as Spec[];
    expect(multistep.values(journey!)).toEqual([
      'duration_ms',
      'steps_passed',
      'step_login_ms',
      'step_get_orders_ms',
      'step_order_detail_ms',
    ]);
  });

  it('rejects a variable no earlier step extracts, naming the step and the variable', () => {
    const steps = journey();
    steps[1] = { ...steps[1], headers: { authorization: 'Bearer {{steps.login.tokn}}' } };
    expect(load(steps).problems).toEqual([
      "probes/shop.yaml: [0].steps.1.headers.authorization: expected {{steps.login.tokn}} in step 'get orders' to name a variable step 'login' extracts: it extracts token, request, sid",
    ]);
  });

  it('rejects a reference to a later step, to itself, or to no step', () => {
    const steps = journey();
    steps[0] = { ...steps[0], body: '{"order":"{{steps.order detail.id}}"}' };
    steps[1] = { ...steps[1], url: `${base}/api/orders?me={{steps.get orders.first}}&x={{steps.logout.x}}` };
    expect(load(steps).problems).toEqual([
      "probes/shop.yaml: [0].steps.0.body: expected {{steps.order detail.id}} in step 'login' to name an earlier step: 'order detail' runs after it",
      "probes/shop.yaml: [0].steps.1.url: expected {{steps.get orders.first}} in step 'get orders' to name an earlier step: 'get orders' is this step",
      "probes/shop.yaml: [0].steps.1.url: expected {{steps.logout.x}} in step 'get orders' to name an earlier step: no step is named 'logout'",
    ]);
  });

  it('rejects duplicate step names, and names that would make the same value', () => {
    const steps = journey();
    steps[2] = { ...steps[2], name: 'login' };
    steps.push({ ...steps[1], name: 'Get-Orders' });
    expect(load(steps).problems).toEqual([
      "probes/shop.yaml: [0].steps.2.name: expected unique step names: 'login' is also step 1",
      "probes/shop.yaml: [0].steps.3.name: expected step names that differ in more than case and punctuation: 'Get-Orders' and step 2's 'get orders' are both step_get_orders_ms",
    ]);
  });

  it('rejects a placeholder that is not a step variable or sits in expect, and a regex group the pattern lacks', () => {
    const steps = journey();
    steps[1] = { ...steps[1], headers: { authorization: 'Bearer {{token}}' } };
    steps[0] = { ...steps[0], extract: { token: { regex: 'tok-[0-9a-f]+', group: 1 } } };
    steps[2] = { ...steps[2], expect: { bodyContains: '{{steps.login.token}}' } };
    const { problems } = load(steps);
    expect(problems).toContain('probes/shop.yaml: [0].steps.0.extract.token.regex: expected group 1 to exist: the pattern has 0');
    expect(problems).toContain(
      'probes/shop.yaml: [0].steps.2.expect: expected {{steps.…}} only in url, headers and body: expect is not filled in',
    );
    expect(problems).toContain(
      "probes/shop.yaml: [0].steps.1.headers.authorization: expected {{steps.<step name>.<variable>}}, got {{token}} in step 'get orders' (${…} is for secrets)",
    );
  });

  it('shows its first URL as the target, less the password; keeps a ${…} password out of the run record', async () => {
    shop.mode = 'echo login';
    const steps = journey('${SHOP_PASSWORD}');
    steps[0] = {
      ...steps[0],
      url: `${base.replace('://', '://probe:${SHOP_PASSWORD}@')}/login`,
      expect: { status: 200, bodyContains: 'welcome' },
    };
    // The login page echoes the form, password included, and the failed body check quotes it.
    const { loaded, problems } = load(steps, { SHOP_PASSWORD: PASSWORD });
    expect(problems).toEqual([]);
    const def = loaded?.probes[0] as ProbeDefinition;
    expect(multistep.report.target(def as Spec)).toBe(`${base}/login`);
    const record = await runProbe(def, 'manual', {
      clock: systemClock,
      logger: memoryLogger().logger,
      probesDir: path.join(ws.dir, 'probes'),
      state: memoryState(),
      shutdown: new Shutdown(),
      redactor: createSecretBook(loaded!).forProbe(def),
    });
    expect(record.ok).toBe(false);
    expect(record.message).toMatch(/^step 'login' \(1 of 3\): body does not contain "welcome": "you sent .*<secret>/);
    expect(shop.seen[0]?.body).toContain(PASSWORD);
    const text = JSON.stringify(record);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encodeURIComponent(PASSWORD));
  });
});
