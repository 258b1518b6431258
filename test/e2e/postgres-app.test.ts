import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

// The whole service on PostgreSQL (storage.postgres): runs, incidents, the audit log and the report
// all go through the PostgreSQL store, and a second instance on the same database sees them.

const TOKEN = 'operator-token-0123456789abcdef';

describe('vigil on PostgreSQL', () => {
  let pg: TestPostgres;
  let upstream: Awaited<ReturnType<typeof target>>;
  let ws: ReturnType<typeof workspace>;
  const apps: App[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    await pg.query('CREATE DATABASE vigil');
    upstream = await target((_req, res) => {
      res.statusCode = 503;
      res.end('{"status":"fail","checks":{"db":"down"}}');
    });
    ws = workspace({
      'config/default.yaml': `
service: { host: 127.0.0.1, port: 0 }
storage: { postgres: { url: "\${VIGIL_PG_URL}" }, batch: { interval: 50ms } }
auth: { tokens: [{ name: ops, token: "${TOKEN}", role: operator }] }
`,
      'probes/api.yaml': `- id: api\n  kind: http\n  url: ${upstream.url}/health\n  schedule: "0 0 1 1 *"\n  alert: { failures: 2, severity: critical }\n`,
    });
  }, 60_000);
  afterAll(async () => {
    for (const a of apps) await a.stop().catch(() => {});
    await upstream?.close();
    await pg?.stop();
    ws?.remove();
  });

  const start = async (location: string) => {
    const config = loadConfig({ cwd: ws.dir, env: { VIGIL_PG_URL: pg.url.replace(/\/postgres$/, '/vigil'), VIGIL_LOCATION: location } });
    const app = createApp({ config, logger: memoryLogger().logger });
    apps.push(app);
    return { app, base: await app.start() };
  };

  it('stores runs, opens an incident, audits a write and reports, readable from a second instance', async () => {
    const { app, base } = await start('eu-west');
    await app.scheduler.runNow('api');
    await app.scheduler.runNow('api');
    await app.store.flush();
    // The leader (this instance, the only one) judges runs from the database's run feed.
    const incidents = await waitFor('the incident', async () => {
      const body = (await (await fetch(`${base}/api/v1/incidents`)).json()) as { incidents: Array<{ probe: string; state: string }> };
      return body.incidents.length > 0 ? body.incidents : undefined;
    });
    expect(incidents).toEqual([expect.objectContaining({ probe: 'api', state: 'open' })]);
    const health = (await (await fetch(`${base}/health`)).json()) as { checks: { leader: { leader: boolean } } };
    expect(health.checks.leader.leader).toBe(true);
    const silence = await fetch(`${base}/api/v1/silences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ probes: ['api'], duration: '1h', comment: 'db migration' }),
    });
    expect(silence.status).toBe(201);
    const runs = (await (await fetch(`${base}/api/v1/probes/api/runs`)).json()) as {
      runs: Array<{ ok: boolean; code: string; location: string }>;
    };
    expect(runs.runs.map((r) => [r.ok, r.code, r.location])).toEqual([
      [false, 'HTTP_STATUS', 'eu-west'],
      [false, 'HTTP_STATUS', 'eu-west'],
    ]);

    // A second instance, another location, the same database: it reads what the first wrote.
    const other = await start('us-east');
    const report = (await (await fetch(`${other.base}/api/v1/report?days=1`)).json()) as {
      probes: Array<{ id: string; runs: number; failures: number }>;
      incidents: { count: number };
    };
    expect(report.probes).toEqual([expect.objectContaining({ id: 'api', runs: 2, failures: 2 })]);
    expect(report.incidents.count).toBe(1);
    const silences = (await (await fetch(`${other.base}/api/v1/silences`)).json()) as { silences: Array<{ comment: string }> };
    expect(silences.silences.map((s) => s.comment)).toEqual(['db migration']);
    expect((await fetch(`${other.base}/health`)).status).toBe(200);
    // A run made at eu-west after us-east started shows as the probe's last run on us-east too.
    const fresh = await app.scheduler.runNow('api');
    await app.store.flush();
    const shown = await waitFor("the other location's run on this instance", async () => {
      const body = (await (await fetch(`${other.base}/api/v1/probes/api`)).json()) as {
        state: string;
        lastRun: { at: string; location?: string };
      };
      return body.lastRun?.at === new Date(fresh.startedAt).toISOString() ? body : undefined;
    });
    expect(shown).toMatchObject({ state: 'down', lastRun: { location: 'eu-west' } });
    const rows = await pg.query('SELECT actor, action, status FROM audit ORDER BY id', 'vigil');
    expect(rows.trim()).toBe('ops|POST /api/v1/silences|201');
  }, 60_000);
});
