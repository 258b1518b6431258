import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { clientOf } from '../../src/server/rate-limit.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// Access control, the audit log, rate limits and config reload, through the real app and its routes.

const VIEWER = 'viewer-token-0123456789abcdef';
const OPERATOR = 'operator-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef01';
const NOW = Date.UTC(2026, 10, 26, 12);

const config = (auth: string, extra = '') => `
service: { name: shop }
storage: { sqlite: { path: ./data/vigil.db } }
auth:
  tokens:
    - { name: dana, token: "\${VIEWER}", role: viewer }
    - { name: ops, token: "\${OPERATOR}", role: operator }
    - { name: root, token: "\${ADMIN}", role: admin }
${auth}
${extra}
`;
const PROBES = `
- id: api
  kind: http
  url: http://127.0.0.1:9/health
  schedule: "* * * * *"
`;
const ENV = { VIEWER, OPERATOR, ADMIN };

describe('access control, audit and reload', () => {
  let ws: ReturnType<typeof workspace> | undefined;
  let app: App | undefined;
  afterEach(async () => {
    await app?.server.close();
    await app?.store.close();
    ws?.remove();
    app = undefined;
    ws = undefined;
  });

  function build(auth = '', extra = '') {
    ws = workspace({ 'config/default.yaml': config(auth, extra), 'probes/api.yaml': PROBES });
    const dir = ws.dir;
    const log = memoryLogger();
    const clock = new ManualClock(NOW);
    app = createApp({
      config: loadConfig({ cwd: dir, env: ENV }),
      logger: log.logger,
      clock,
      reloadConfig: () => loadConfig({ cwd: dir, env: ENV }),
    });
    return { app, dir, lines: log.lines, clock };
  }
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('checks roles on writes and records every write, refused or not, in the audit log', async () => {
    const { app, clock, lines } = build();
    const silence = { probes: ['api'], duration: '1h', comment: 'deploy' };
    const calls = [
      await app.server.inject({ method: 'POST', url: '/api/v1/silences', headers: bearer(OPERATOR), payload: silence }),
      await app.server.inject({ method: 'POST', url: '/api/v1/incidents/999/ack', headers: bearer(OPERATOR) }),
      await app.server.inject({ method: 'POST', url: '/api/v1/silences', headers: bearer(VIEWER), payload: silence }),
      await app.server.inject({ method: 'POST', url: '/api/v1/silences', payload: silence }),
      await app.server.inject({ method: 'POST', url: '/api/v1/silences', headers: bearer('not-a-token-0123456789'), payload: silence }),
    ];
    expect(calls.map((c) => c.statusCode)).toEqual([201, 404, 403, 401, 401]);

    expect((await app.server.inject({ url: '/api/v1/audit', headers: bearer(OPERATOR) })).statusCode).toBe(403);
    const res = await app.server.inject({ url: '/api/v1/audit', headers: bearer(ADMIN) });
    expect(res.statusCode).toBe(200);
    const entries = res.json().entries as Array<Record<string, unknown>>;
    // Anonymous refusals (no token, unknown token) are not a row each: one summary per address and minute.
    expect(entries.map((e) => [e.actor, e.action, e.target ?? null, e.result, e.status])).toEqual([
      ['dana', 'POST /api/v1/silences', null, 'failure', 403],
      ['ops', 'POST /api/v1/incidents/:id/ack', '{"id":999}', 'failure', 404],
      ['ops', 'POST /api/v1/silences', null, 'success', 201],
    ]);
    expect(entries.map((e) => e.requestId)).toEqual(
      calls
        .slice(0, 3)
        .map((c) => c.headers['x-request-id'])
        .reverse(),
    );
    expect(entries[0]).toMatchObject({ detail: 'token "dana" has role viewer; this needs operator', at: new Date(NOW).toISOString() });
    // Reads are not audited; the filter finds one actor's writes.
    const mine = await app.server.inject({ url: '/api/v1/audit?actor=ops&limit=1', headers: bearer(ADMIN) });
    expect(mine.json().entries.map((e: { status: number }) => e.status)).toEqual([404]);

    // A minute on, the next refusal closes the window: one row for the two, with their count.
    await clock.advance(61_000);
    await app.server.inject({ method: 'POST', url: '/api/v1/silences', payload: silence });
    const anon = await app.server.inject({ url: '/api/v1/audit?actor=anonymous', headers: bearer(ADMIN) });
    expect(anon.json().entries).toEqual([
      expect.objectContaining({
        action: 'POST /api/v1/silences',
        target: '{"address":"127.0.0.1"}',
        result: 'failure',
        status: 401,
        detail: expect.stringMatching(/^2 refused writes from 127\.0\.0\.1 since .* \(unauthorized 2, rate limited 0\)$/),
      }),
    ]);
    expect(lines.filter((l) => l.msg === 'requests refused')).toEqual([
      expect.objectContaining({ level: 'warn', address: '127.0.0.1', refused: 2, writes: 2, unauthorized: 2 }),
    ]);
  });

  it('puts reads and /metrics behind a viewer token when configured, never /health', async () => {
    const { app } = build('  reads: token\n  metrics: token');
    expect((await app.server.inject({ url: '/api/v1/probes' })).statusCode).toBe(401);
    expect((await app.server.inject({ url: '/api/v1/probes', headers: bearer(VIEWER) })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/' })).statusCode).toBe(401);
    expect((await app.server.inject({ url: '/api/v1/report', headers: bearer(VIEWER) })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.server.inject({ url: '/metrics', headers: bearer(VIEWER) })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/health' })).statusCode).not.toBe(401);
  });

  it('puts reads behind a token and opens them again by reload, no restart', async () => {
    const { app, dir } = build();
    expect((await app.server.inject({ url: '/api/v1/probes' })).statusCode).toBe(200);
    writeFileSync(path.join(dir, 'config/default.yaml'), config('  reads: token\n  metrics: token'));
    expect((await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(ADMIN) })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/api/v1/probes' })).statusCode).toBe(401);
    expect((await app.server.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.server.inject({ url: '/api/v1/probes', headers: bearer(VIEWER) })).statusCode).toBe(200);
    writeFileSync(path.join(dir, 'config/default.yaml'), config(''));
    expect((await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(ADMIN) })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/api/v1/probes' })).statusCode).toBe(200);
  });

  it('keeps reads open by default', async () => {
    const { app } = build();
    expect((await app.server.inject({ url: '/api/v1/probes' })).statusCode).toBe(200);
    expect((await app.server.inject({ url: '/metrics' })).statusCode).toBe(200);
  });

  it('rate-limits a client address with a 429 in the API error shape, but not /health or /metrics', async () => {
    const { app } = build('  rateLimit: { perMinute: 5, linksPerMinute: 2 }');
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await app.server.inject({ url: '/api/v1/probes' })).statusCode);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const limited = await app.server.inject({ url: '/api/v1/probes' });
    expect(limited.json()).toMatchObject({ error: 'Too Many Requests', code: 'VIGIL_ERR_RATE_LIMITED' });
    for (let i = 0; i < 10; i++) expect((await app.server.inject({ url: '/metrics' })).statusCode).toBe(200);
  });

  it('counts an IPv6 client by its /64, an IPv4-mapped one as IPv4', () => {
    const of = (ip: string) => clientOf({ ip } as FastifyRequest);
    expect(of('2001:db8:1:2::1')).toBe(of('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(of('2001:db8:1:2::1')).not.toBe(of('2001:db8:1:3::1'));
    expect(of('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(of('10.0.0.1')).not.toBe(of('10.0.0.2'));
  });

  it('reloads probes and tokens in one step, refuses what needs a restart, and keeps the old config on a bad file', async () => {
    const { app, dir } = build();
    writeFileSync(
      path.join(dir, 'probes/api.yaml'),
      `${PROBES}  timeout: 3s
- id: web
  kind: http
  url: http://127.0.0.1:9/
  schedule: "* * * * *"
`,
    );
    writeFileSync(
      path.join(dir, 'config/default.yaml'),
      config('', 'metrics: { durationBuckets: [1, 5] }').replace(
        '{ name: dana, token: "${VIEWER}", role: viewer }',
        '{ name: dana, token: "${VIEWER}", role: admin }',
      ),
    );
    expect((await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(OPERATOR) })).statusCode).toBe(403);
    // The metric buckets take a restart: the whole reload is refused, nothing of it applied.
    const refused = await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(ADMIN) });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({
      ok: false,
      code: 'VIGIL_ERR_RESTART_REQUIRED',
      problems: ['metrics: changed; takes a restart'],
    });
    expect((await app.server.inject({ url: '/api/v1/probes' })).json().probes.map((p: { id: string }) => p.id)).toEqual(['api']);
    expect((await app.server.inject({ url: '/api/v1/audit', headers: bearer(VIEWER) })).statusCode).toBe(403);

    writeFileSync(
      path.join(dir, 'config/default.yaml'),
      config('', '').replace('{ name: dana, token: "${VIEWER}", role: viewer }', '{ name: dana, token: "${VIEWER}", role: admin }'),
    );
    const ok = await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(ADMIN) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({
      ok: true,
      probes: { total: 2, added: ['web'], removed: [], changed: ['api'] },
      restartRequired: [],
    });
    expect((await app.server.inject({ url: '/api/v1/probes' })).json().probes.map((p: { id: string }) => p.id)).toEqual(['api', 'web']);
    // dana is an admin now: the new token roles are in force at once.
    expect((await app.server.inject({ url: '/api/v1/audit', headers: bearer(VIEWER) })).statusCode).toBe(200);

    writeFileSync(path.join(dir, 'probes/api.yaml'), '- id: api\n  kind: htp\n');
    const bad = await app.server.inject({ method: 'POST', url: '/api/v1/admin/reload', headers: bearer(ADMIN) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'VIGIL_ERR_CONFIG' });
    expect(bad.json().problems[0]).toMatch(/^probes\/api\.yaml: \[0\]\.kind: expected one of .*got "htp" \(did you mean "http"\?\)$/);
    expect((await app.server.inject({ url: '/api/v1/probes' })).json().probes.map((p: { id: string }) => p.id)).toEqual(['api', 'web']);

    const metrics = (await app.server.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('vigil_config_reloads_total{result="success"} 1');
    expect(metrics).toContain('vigil_config_reloads_total{result="failure"} 2');
    expect(metrics).toContain('vigil_config_last_reload_success 0');
    const audit = (await app.server.inject({ url: '/api/v1/audit?action=POST%20/api/v1/admin/reload', headers: bearer(ADMIN) })).json();
    expect(audit.entries.map((e: { actor: string; status: number }) => [e.actor, e.status])).toEqual([
      ['root', 400],
      ['root', 200],
      ['root', 400],
      ['ops', 403],
    ]);
  });
});
