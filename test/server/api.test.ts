import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

const TOKEN = 'tok-3f9a8c1e5b7d';
const OPS_TOKEN = 'ops-8d1c0f2b9e4a7c55';
const VIEWER_TOKEN = 'view-2b7e9a1c4d8f0e66';
const auth = { authorization: `Bearer ${OPS_TOKEN}` };

describe('HTTP API', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;
  let logs: ReturnType<typeof memoryLogger>;

  beforeAll(async () => {
    upstream = await target((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/health') res.end(JSON.stringify({ status: 'ok', queue: { depth: 7 } }));
      else {
        res.statusCode = 503;
        res.end(JSON.stringify({ status: 'error', checks: { db: 'ok', cache: 'down' } }));
      }
    });
    ws = workspace({
      'config/default.yaml':
        'service:\n  port: 0\n  host: 127.0.0.1\nstorage:\n  sqlite:\n    path: ./data/vigil.db\n' +
        'auth:\n  tokens:\n    - { name: ops, token: "${OPS_TOKEN}", role: operator }\n    - { name: dash, token: "${VIEWER_TOKEN}", role: viewer }\n',
      'probes/api.yaml': `
- id: api-health
  kind: http
  url: ${upstream.url}/health
  schedule: "0 3 * * *"
  headers: { Authorization: "Bearer \${API_TOKEN}" }
  extract: { queue_depth: queue.depth }
  labels: { team: core }
- id: api-broken
  kind: http
  url: ${upstream.url}/broken
  schedule: "0 3 * * *"
`,
    });
    const config = loadConfig({ cwd: ws.dir, env: { API_TOKEN: TOKEN, OPS_TOKEN, VIEWER_TOKEN } });
    logs = memoryLogger('info');
    app = createApp({ config, logger: logs.logger });
    await app.start();
  });

  afterAll(async () => {
    await app.stop();
    await upstream.close();
    ws.remove();
  });

  const get = (url: string, headers: Record<string, string> = {}) => app.server.inject({ method: 'GET', url, headers });

  it('answers /health with each check, 200 when all pass', async () => {
    const res = await get('/health');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', checks: { database: { ok: true }, scheduler: { ok: true } } });
  });

  it('lists probes as unknown before their first run, then up or down with the last run', async () => {
    const before = (await get('/api/v1/probes')).json();
    expect(before.probes.map((p: { id: string; state: string }) => [p.id, p.state])).toEqual([
      ['api-health', 'unknown'],
      ['api-broken', 'unknown'],
    ]);

    const ran = await app.server.inject({ method: 'POST', url: '/api/v1/probes/api-health/run', headers: auth });
    expect(ran.statusCode).toBe(200);
    expect(ran.json().run).toMatchObject({ ok: true, trigger: 'manual', values: { status: 200, queue_depth: 7 } });
    const broken = await app.server.inject({ method: 'POST', url: '/api/v1/probes/api-broken/run', headers: auth });
    expect(broken.json().run).toMatchObject({
      ok: false,
      code: 'HTTP_STATUS',
      message: '503 Service Unavailable: cache down (expected 2xx)',
    });

    const one = (await get('/api/v1/probes/api-health')).json();
    expect(one).toMatchObject({ id: 'api-health', kind: 'http', state: 'up', labels: { team: 'core' }, lastRun: { ok: true, code: null } });
    expect(typeof one.lastRun.at).toBe('string');
    expect(one.lastRun.durationMs).toBeGreaterThan(0);
    expect((await get('/api/v1/probes/api-broken')).json()).toMatchObject({ state: 'down', lastRun: { code: 'HTTP_STATUS' } });
  });

  it('starts a run without waiting when asked', async () => {
    const res = await app.server.inject({ method: 'POST', url: '/api/v1/probes/api-health/run?wait=false', headers: auth });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ probe: 'api-health', status: 'started' });
    await waitFor('the run to finish', () => !app.scheduler.isRunning('api-health'));
  });

  it('returns runs in a window, newest first, and rejects bad parameters with the reason', async () => {
    const all = (await get('/api/v1/probes/api-health/runs')).json();
    expect(all.runs.length).toBeGreaterThanOrEqual(2);
    expect(Date.parse(all.runs[0].at)).toBeGreaterThanOrEqual(Date.parse(all.runs[1].at));
    expect(all.runs[0].id).toBeTypeOf('number');

    const future = (await get(`/api/v1/probes/api-health/runs?since=${new Date(Date.now() + 60_000).toISOString()}`)).json();
    expect(future.runs).toEqual([]);
    const limited = (await get('/api/v1/probes/api-health/runs?limit=1')).json();
    expect(limited.runs).toHaveLength(1);

    const bad = await get('/api/v1/probes/api-health/runs?since=yesterday');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: 'VIGIL_ERR_BAD_REQUEST',
      message: expect.stringContaining('since must be an ISO 8601 date-time'),
    });
    const zero = await get('/api/v1/probes/api-health/runs?limit=0');
    expect(zero.statusCode).toBe(400);
    expect(zero.json().message).toMatch(/limit must be >= 1/);
    const unknown = await get('/api/v1/probes/api-health/runs?limt=5');
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toMatch(/additional properties/);
    const reversed = await get('/api/v1/probes/api-health/runs?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z');
    expect(reversed.statusCode).toBe(400);
  });

  it('answers 404 with a code for unknown probes and routes', async () => {
    for (const url of ['/api/v1/probes/nope', '/api/v1/probes/nope/runs', '/api/v1/nothing']) {
      const res = await get(url);
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('VIGIL_ERR_NOT_FOUND');
    }
    const run = await app.server.inject({ method: 'POST', url: '/api/v1/probes/nope/run', headers: auth });
    expect(run.statusCode).toBe(404);
  });

  it('needs an operator token for writes, compared in constant time, and says why it refuses', async () => {
    const none = await app.server.inject({ method: 'POST', url: '/api/v1/probes/api-health/run' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: 'VIGIL_ERR_UNAUTHORIZED', message: expect.stringContaining('Authorization: Bearer') });
    const wrong = await app.server.inject({
      method: 'POST',
      url: '/api/v1/probes/api-health/run',
      headers: { authorization: `Bearer ${OPS_TOKEN}x` },
    });
    expect(wrong.statusCode).toBe(401);
    const viewer = await app.server.inject({
      method: 'POST',
      url: '/api/v1/probes/api-health/run',
      headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
    });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json().message).toBe('token "dash" has role viewer; this needs operator');
    expect(none.body + wrong.body + viewer.body).not.toContain(OPS_TOKEN);
  });

  it('echoes a request id, or makes one, and logs it on the request lines', async () => {
    const given = await get('/health', { 'x-request-id': 'abc-123' });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await get('/health');
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const evil = await get('/health', { 'x-request-id': 'x\ny' });
    expect(evil.headers['x-request-id']).not.toBe('x\ny');
    expect(logs.lines.some((l) => l.requestId === 'abc-123' && l.msg === 'request completed')).toBe(true);
  });

  it('never shows or logs a secret', async () => {
    const res = await get('/api/v1/probes/api-health');
    expect(res.body).not.toContain(TOKEN);
    expect(res.json().definition.headers.Authorization).toBe('<secret>');
    expect(JSON.stringify(logs.lines)).not.toContain(TOKEN);
  });

  it('exposes every probe series on /metrics from the start and updates them from runs', async () => {
    const res = await get('/metrics');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('vigil_probe_success{probe="api-health",kind="http"} 1');
    expect(res.body).toContain('vigil_probe_success{probe="api-broken",kind="http"} 0');
    expect(res.body).toMatch(/vigil_probe_runs_total\{probe="api-health",kind="http",outcome="failure"\} 0/);
    expect(res.body).toMatch(/vigil_probe_value\{probe="api-health",kind="http",name="queue_depth"\} 7/);
    expect(res.body).toContain('vigil_scheduler_skipped_total{reason="overlap"} 0');
    expect(res.body).toContain('process_cpu_seconds_total');
  });
});
