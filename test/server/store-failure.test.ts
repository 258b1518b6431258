import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiToken } from '../../src/server/auth.js';
import { createServer, type ServerDeps } from '../../src/server/index.js';
import { type AlertStore, type AuditLog, createSqliteStore } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';

// The API over the asynchronous store, on a real loopback server: the routes read a real SQLite
// store, and a store double that fails shows what a database that is down looks like from outside.

const OPS = 'ops-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const TOKENS: ApiToken[] = [
  { name: 'ops', token: OPS, role: 'operator' },
  { name: 'root', token: ADMIN, role: 'admin' },
];
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
/** The store double's deadline: how long a failing read takes to reject, like PostgreSQL's timeout. */
const DEADLINE_MS = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

type Failure = 'none' | 'reject' | 'hang' | 'bug';

async function start(opts: { audit?: Pick<AuditLog, 'record'> } = {}) {
  const clock = new ManualClock(NOW);
  const logs = memoryLogger('info');
  const store = createSqliteStore({ path: ':memory:', clock, logger: logs.logger });
  closing.push(() => store.close());
  const state = { failure: 'none' as Failure, healthError: undefined as string | undefined, release: () => {} };
  // The real alert store, but its reads fail as told: after the deadline, never, or with a bug of ours.
  const fail = <A extends unknown[], R>(read: (...args: A) => Promise<R>) =>
    (async (...args: A) => {
      if (state.failure === 'reject') {
        await sleep(DEADLINE_MS);
        throw Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
      }
      if (state.failure === 'hang') await new Promise<void>((r) => (state.release = r));
      if (state.failure === 'bug') throw new TypeError("Cannot read properties of undefined (reading 'id')");
      return read(...args);
    }) as (...args: A) => Promise<R>;
  const real = store.alerts;
  const alerts: AlertStore = {
    ...real,
    incidents: fail(real.incidents),
    incident: fail(real.incident),
    timeline: fail(real.timeline),
    silences: fail(real.silences),
    overrides: fail(real.overrides),
    addOverride: fail(real.addOverride),
  };
  const registry = new Registry();
  const deps: ServerDeps = {
    logger: logs.logger,
    registry,
    store: {
      ...store,
      health: () => ({ writable: state.healthError === undefined, queued: 0, ...(state.healthError ? { error: state.healthError } : {}) }),
    },
    scheduler: { runNow: () => Promise.reject(new Error('no scheduler here')), isRunning: () => false },
    probes: () => [],
    redact: (v) => v,
    health: () => ({ store: { ok: state.healthError === undefined } }),
    tokens: TOKENS,
    audit: opts.audit ?? store.audit,
    now: () => clock.now(),
    admin: { clock, audit: store.audit, reload: async () => ({ ok: true }) },
    oncall: {
      clock,
      alerts,
      schedules: () => ({
        primary: {
          timezone: 'UTC',
          layers: [{ rotation: 'daily', handoff: '09:00', start: '2026-11-02', participants: ['alice', 'bob'] }],
        },
      }),
      people: () => ({ alice: { name: 'Alice Ng' }, bob: { name: 'Bob Ruiz' } }),
    },
    alerting: {
      clock,
      alerts,
      acknowledge: () => Promise.reject(new Error('not in this test')),
      resolve: () => Promise.reject(new Error('not in this test')),
      silencesChanged: () => {},
      channels: () => ({}),
      testChannel: () => Promise.reject(new Error('not in this test')),
      targets: () => [{ id: 'api', labels: {} }],
      maintenance: () => [],
    },
  };
  const server: FastifyInstance = createServer(deps);
  const base = await server.listen({ host: '127.0.0.1', port: 0 });
  closing.push(async () => {
    state.release();
    await server.close();
  });
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const started = performance.now();
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      ms: performance.now() - started,
      requestId: res.headers.get('x-request-id'),
      json: () => JSON.parse(text),
    };
  };
  return { store, state, logs, call };
}

async function openIncident(alerts: AlertStore, probeId: string, at: number) {
  return alerts.applyIncidentChange({
    open: {
      probeId,
      rule: 'failures',
      kind: 'http',
      severity: 'critical',
      state: 'open',
      summary: `${probeId} failing`,
      labels: {},
      channels: ['ops'],
      openedAt: at,
      flapping: false,
      notified: true,
    },
    event: { at, type: 'opened', actor: 'vigil' },
    notify: [],
  });
}

describe('the API over the asynchronous store', () => {
  it('reads and writes incidents, silences, overrides and the audit log through it', async () => {
    const { store, call } = await start();
    const i = await openIncident(store.alerts, 'api', NOW - 600_000);

    const list = await call('GET', '/api/v1/incidents');
    expect(list.status).toBe(200);
    expect(list.json().incidents.map((x: { id: number; probe: string }) => [x.id, x.probe])).toEqual([[i.id, 'api']]);
    const one = (await call('GET', `/api/v1/incidents/${i.id}`)).json();
    expect(one.timeline).toEqual([{ at: new Date(NOW - 600_000).toISOString(), type: 'opened', actor: 'vigil', detail: null }]);
    expect((await call('GET', '/api/v1/incidents/999')).status).toBe(404);

    const silence = await call('POST', '/api/v1/silences', { probes: ['api'], duration: '1h', comment: 'deploy' }, OPS);
    expect(silence.status).toBe(201);
    expect(silence.json()).toMatchObject({ probes: ['api'], author: 'ops', active: true, covers: ['api'] });
    expect((await call('GET', '/api/v1/silences')).json().silences).toHaveLength(1);
    expect((await call('DELETE', `/api/v1/silences/${silence.json().id}`, undefined, OPS)).status).toBe(204);
    expect((await call('DELETE', `/api/v1/silences/${silence.json().id}`, undefined, OPS)).status).toBe(404);

    // Alice is on call by the rotation (day 24 since the start: even); an override puts Bob on.
    expect((await call('GET', '/api/v1/oncall')).json().schedules[0].onCall).toMatchObject({ id: 'alice', source: 'layer 0' });
    const o = await call(
      'POST',
      '/api/v1/oncall/overrides',
      { schedule: 'primary', person: 'bob', start: new Date(NOW - 60_000).toISOString(), end: new Date(NOW + 3_600_000).toISOString() },
      OPS,
    );
    expect(o.status).toBe(201);
    const oncall = (await call('GET', '/api/v1/oncall')).json();
    expect(oncall.schedules[0].onCall).toMatchObject({ id: 'bob', name: 'Bob Ruiz', source: 'override' });
    expect(oncall.overrides).toMatchObject([{ id: o.json().id, person: { id: 'bob' }, author: 'ops' }]);
    const shifts = (await call('GET', `/api/v1/schedules/primary/shifts?from=${new Date(NOW).toISOString()}`)).json().shifts;
    expect(shifts[0]).toMatchObject({ person: { id: 'bob' }, source: 'override', end: new Date(NOW + 3_600_000).toISOString() });
    expect((await call('DELETE', `/api/v1/oncall/overrides/${o.json().id}`, undefined, OPS)).status).toBe(204);
    expect((await call('GET', '/api/v1/oncall')).json().overrides).toEqual([]);

    // Every write above is in the audit log, written once its answer was out.
    const actions = async () =>
      (await call('GET', '/api/v1/audit', undefined, ADMIN)).json().entries.map((e: { action: string }) => e.action);
    const expected = [
      'DELETE /api/v1/oncall/overrides/:id',
      'POST /api/v1/oncall/overrides',
      'DELETE /api/v1/silences/:id',
      'DELETE /api/v1/silences/:id',
      'POST /api/v1/silences',
    ];
    await waitFor('the audit entries', async () => (await actions()).length === expected.length);
    expect(await actions()).toEqual(expected);
  });

  it('answers 503 naming the store, within the store deadline, when its reads fail', async () => {
    const { store, state, logs, call } = await start();
    state.failure = 'reject';
    for (const path of ['/api/v1/incidents', '/api/v1/incidents/1', '/api/v1/silences', '/api/v1/oncall']) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(503);
      expect(res.json(), path).toEqual({
        error: 'Service Unavailable',
        code: 'VIGIL_ERR_STORE',
        message: 'the store is unavailable (a database call failed; the log has the cause under this request id); try again shortly',
      });
      // Answered once the store gives up, not after some longer wait of the server's own.
      expect(res.ms, path).toBeLessThan(DEADLINE_MS + 1_000);
      // The backend's own error (a host and port) is in the log under the request id, not in the answer.
      const line = logs.lines.find((l) => l.msg === 'store unavailable' && l.requestId === res.requestId);
      expect(line, path).toBeDefined();
      expect(JSON.stringify(line)).toContain('ECONNREFUSED 10.1.2.3:5432');
    }

    // When the store knows what is wrong (its health), the answer says it.
    state.healthError = 'PostgreSQL has not answered for 3.2 s';
    const res = await call('GET', '/api/v1/incidents');
    expect(res.status).toBe(503);
    expect(res.json().message).toBe('the store is unavailable (PostgreSQL has not answered for 3.2 s); try again shortly');

    // A write the store refuses is a 503 too, and its audit entry says so.
    const override = { schedule: 'primary', person: 'bob', start: new Date(NOW).toISOString(), end: new Date(NOW + 60_000).toISOString() };
    const write = await call('POST', '/api/v1/oncall/overrides', override, OPS);
    expect(write.status).toBe(503);
    expect(write.json().code).toBe('VIGIL_ERR_STORE');
    const audited = await waitFor('the audit entry', async () => (await store.audit.list({ limit: 10 }))[0]);
    expect(audited).toMatchObject({
      action: 'POST /api/v1/oncall/overrides',
      actor: 'ops',
      result: 'failure',
      status: 503,
      requestId: write.requestId,
    });
  });

  it('keeps answering while a store read hangs, and never calls a bug of its own a store failure', async () => {
    const { state, call } = await start();
    state.failure = 'hang';
    const pending = call('GET', '/api/v1/incidents');
    await sleep(50);
    // The hanging read holds its own request only.
    const health = await call('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(500);
    state.failure = 'none';
    state.release();
    expect((await pending).status).toBe(200);

    state.failure = 'bug';
    const res = await call('GET', '/api/v1/incidents');
    expect(res.status).toBe(500);
    expect(res.json().code).toBe('VIGIL_ERR_INTERNAL');
  });

  it('logs an audit entry it could not write with the request id, and the answer stands', async () => {
    const { logs, call } = await start({ audit: { record: () => Promise.reject(new Error('disk I/O error')) } });
    const res = await call('POST', '/api/v1/silences', { probes: ['api'], duration: '1h', comment: 'deploy' }, OPS);
    expect(res.status).toBe(201);
    const line = await waitFor('the audit failure line', () => logs.lines.find((l) => l.msg === 'audit entry not written'));
    expect(line).toMatchObject({ level: 'error', requestId: res.requestId, action: 'POST /api/v1/silences', status: 201 });
    expect(JSON.stringify(line.err)).toContain('disk I/O error');
  });
});
