import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

const OPS = 'ops-token-6c1f0d9e8b7a';
const auth = { authorization: `Bearer ${OPS}` };

describe('on-call API', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  // Tuesday 2026-12-01 10:00 in Berlin (09:00Z): alice's week (rotation from Monday 2026-11-30 09:00).
  const clock = new ManualClock(Date.UTC(2026, 11, 1, 9, 0));

  beforeAll(async () => {
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
auth:
  tokens: [{ name: ops, token: "\${OPS}", role: operator }]
people:
  alice: { name: Alice Ng, email: alice@example.com }
  bob: { name: Bob Ode, email: bob@example.com }
  carol: { name: Carol Ito, email: carol@example.com }
schedules:
  primary:
    timezone: Europe/Berlin
    layers:
      - rotation: weekly
        handoff: "mon 09:00"
        start: 2026-11-30
        participants: [alice, bob, carol]
`,
      'probes/none.yaml': '[]\n',
    });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: { OPS } }), logger: memoryLogger().logger, clock });
    await app.start();
  });

  afterAll(async () => {
    await app.stop();
    ws.remove();
  });

  const get = (url: string) => app.server.inject({ method: 'GET', url });

  it('says who is on call now, until when, and the next handoffs', async () => {
    const res = (await get('/api/v1/oncall')).json();
    expect(res.schedules).toEqual([
      {
        schedule: 'primary',
        timezone: 'Europe/Berlin',
        onCall: { id: 'alice', name: 'Alice Ng', since: '2026-11-30T08:00:00.000Z', until: '2026-12-07T08:00:00.000Z', source: 'layer 0' },
        next: [
          { at: '2026-12-07T08:00:00.000Z', person: { id: 'bob', name: 'Bob Ode' } },
          { at: '2026-12-14T08:00:00.000Z', person: { id: 'carol', name: 'Carol Ito' } },
          { at: '2026-12-21T08:00:00.000Z', person: { id: 'alice', name: 'Alice Ng' } },
        ],
      },
    ]);
    expect((await get('/metrics')).body).toContain('vigil_oncall{schedule="primary",person="alice"} 1');
  });

  it('lists shifts in a range and refuses bad ranges', async () => {
    const res = (await get('/api/v1/schedules/primary/shifts?from=2026-12-01T00:00:00Z&to=2026-12-15T00:00:00Z')).json();
    expect(res.shifts.map((s: { person: { id: string }; start: string }) => [s.person.id, s.start])).toEqual([
      ['alice', '2026-12-01T00:00:00.000Z'],
      ['bob', '2026-12-07T08:00:00.000Z'],
      ['carol', '2026-12-14T08:00:00.000Z'],
    ]);
    expect((await get('/api/v1/schedules/primary/shifts?from=2026-12-15T00:00:00Z&to=2026-12-01T00:00:00Z')).statusCode).toBe(400);
    expect((await get('/api/v1/schedules/primary/shifts?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z')).statusCode).toBe(400);
    expect((await get('/api/v1/schedules/nope/shifts')).statusCode).toBe(404);
  });

  it('takes overrides that win over the rotation, and removes them', async () => {
    const unauth = await app.server.inject({ method: 'POST', url: '/api/v1/oncall/overrides', payload: {} });
    expect(unauth.statusCode).toBe(400);
    const noToken = await app.server.inject({
      method: 'POST',
      url: '/api/v1/oncall/overrides',
      payload: { schedule: 'primary', person: 'carol', start: '2026-12-01T08:00:00Z', end: '2026-12-01T20:00:00Z' },
    });
    expect(noToken.statusCode).toBe(401);
    const created = await app.server.inject({
      method: 'POST',
      url: '/api/v1/oncall/overrides',
      headers: auth,
      payload: { schedule: 'primary', person: 'carol', start: '2026-12-01T08:00:00Z', end: '2026-12-01T20:00:00Z' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ person: { id: 'carol' }, author: 'ops' });
    const now = (await get('/api/v1/oncall')).json().schedules[0].onCall;
    expect(now).toEqual({
      id: 'carol',
      name: 'Carol Ito',
      since: '2026-12-01T08:00:00.000Z',
      until: '2026-12-01T20:00:00.000Z',
      source: 'override',
    });
    const unknown = await app.server.inject({
      method: 'POST',
      url: '/api/v1/oncall/overrides',
      headers: auth,
      payload: { schedule: 'primary', person: 'zed', start: '2026-12-01T08:00:00Z', end: '2026-12-01T20:00:00Z' },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toBe('body/person: no person "zed" under people: in the config');
    const del = await app.server.inject({ method: 'DELETE', url: `/api/v1/oncall/overrides/${created.json().id}`, headers: auth });
    expect(del.statusCode).toBe(204);
    expect((await get('/api/v1/oncall')).json().schedules[0].onCall.id).toBe('alice');
  });
});
