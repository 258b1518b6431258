import { afterEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// What a silence or a maintenance window covers, as the API answers it: the probe ids it matches
// now, a warning when it matches none, and for windows whether one is in force and when it opens next.

const OPERATOR = 'operator-token-0123456789abcdef';
const NOW = Date.UTC(2026, 11, 2, 12, 20, 0);

const CONFIG = `
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
auth: { tokens: [ { name: ops, token: "\${OPERATOR}", role: operator } ] }
alerting:
  maintenance:
    - { name: db-patching, schedule: "15 * * * *", duration: 10m, probes: ["db-*"] }
    - { name: team-web, schedule: "45 * * * *", duration: 5m, labels: { team: web } }
    - { name: typo, schedule: "45 * * * *", duration: 5m, probes: ["dbb-*"] }
`;
const probe = (id: string, team: string) =>
  `- id: ${id}\n  kind: http\n  url: http://127.0.0.1:9/\n  schedule: "* * * * *"\n  labels: { team: ${team} }\n`;
const PROBES = probe('db-primary', 'db') + probe('db-replica', 'db') + probe('web', 'web');

describe('silences and maintenance windows say what they cover', () => {
  let app: App | undefined;
  let ws: ReturnType<typeof workspace> | undefined;
  afterEach(async () => {
    await app?.server.close();
    await app?.store.close();
    ws?.remove();
  });

  async function serve() {
    ws = workspace({ 'config/default.yaml': CONFIG, 'probes/all.yaml': PROBES });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: { OPERATOR } }), logger: memoryLogger().logger, clock: new ManualClock(NOW) });
    const address = await app.server.listen({ host: '127.0.0.1', port: 0 });
    return address;
  }
  const post = (base: string, body: unknown) =>
    fetch(`${base}/api/v1/silences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('a silence lists the probes it covers; one that covers none is kept with a warning', async () => {
    const base = await serve();
    const db = await post(base, { probes: ['db-*'], duration: '1h', comment: 'CHG-1 upgrade' });
    expect(db.status).toBe(201);
    const created = (await db.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ covers: ['db-primary', 'db-replica'], active: true });
    expect(created).not.toHaveProperty('warning');

    const typo = await post(base, { probes: ['dbb-*'], labels: {}, duration: '1h', comment: 'CHG-2' });
    expect(typo.status).toBe(201);
    expect(await typo.json()).toMatchObject({ covers: [], warning: expect.stringMatching(/^matches no probe loaded now/) });

    const both = await post(base, { probes: ['db-*'], labels: { team: 'web' }, duration: '1h', comment: 'CHG-3 nothing is both' });
    expect(await both.json()).toMatchObject({ covers: [], warning: expect.any(String) });
    const all = await post(base, { probes: [], duration: '1h', comment: 'CHG-4 everything' });
    expect(await all.json()).toMatchObject({ covers: ['db-primary', 'db-replica', 'web'] });

    const list = (await (await fetch(`${base}/api/v1/silences`)).json()) as {
      silences: Array<{ comment: string; covers: string[]; warning?: string }>;
    };
    expect(list.silences.map((s) => [s.comment, s.covers, s.warning === undefined])).toEqual([
      ['CHG-1 upgrade', ['db-primary', 'db-replica'], true],
      ['CHG-2', [], false],
      ['CHG-3 nothing is both', [], false],
      ['CHG-4 everything', ['db-primary', 'db-replica', 'web'], true],
    ]);
  });

  it('GET /api/v1/maintenance: each window, the probes it covers, whether it is in force, its opening and the next', async () => {
    const base = await serve();
    const res = await fetch(`${base}/api/v1/maintenance`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      windows: [
        {
          name: 'db-patching',
          schedule: '15 * * * *',
          durationSeconds: 600,
          probes: ['db-*'],
          labels: {},
          covers: ['db-primary', 'db-replica'],
          active: true,
          startsAt: '2026-12-02T12:15:00.000Z',
          endsAt: '2026-12-02T12:25:00.000Z',
          nextStartsAt: '2026-12-02T13:15:00.000Z',
        },
        {
          name: 'team-web',
          schedule: '45 * * * *',
          durationSeconds: 300,
          probes: [],
          labels: { team: 'web' },
          covers: ['web'],
          active: false,
          startsAt: '2026-12-02T12:45:00.000Z',
          endsAt: '2026-12-02T12:50:00.000Z',
          nextStartsAt: '2026-12-02T13:45:00.000Z',
        },
        {
          name: 'typo',
          schedule: '45 * * * *',
          durationSeconds: 300,
          probes: ['dbb-*'],
          labels: {},
          covers: [],
          active: false,
          startsAt: '2026-12-02T12:45:00.000Z',
          endsAt: '2026-12-02T12:50:00.000Z',
          nextStartsAt: '2026-12-02T13:45:00.000Z',
          warning: expect.stringMatching(/^matches no probe loaded now/),
        },
      ],
    });
  });
});
