import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import type { RunRecord } from '../../src/store/index.js';
import { ManualClock } from './clock.js';
import { memoryLogger } from './context.js';
import { workspace } from './workspace.js';

/** Things planted in config and runs that the public status page must never show. */
export const PLANTED = {
  label: 'team-planted-label',
  message: 'planted-message refused by 10.9.8.7',
  url: 'internal-api.corp.example',
  person: 'Alice Plantedname',
  secret: 'sekret-token-0123456789abcdef',
  summary: 'planted-summary checkout failing',
} as const;

export const VIEWER = 'viewer-token-0123456789abcdef';
const HOUR = 3_600_000;
/** 2026-11-26 12:34 UTC. */
export const NOW = Date.UTC(2026, 10, 26, 12, 34);

const CONFIG = (pages: string) => `
service: { name: shop, host: 127.0.0.1, port: 0 }
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
auth:
  tokens:
    - { name: dana, token: "\${VIEWER}", role: viewer }
  reads: token
people:
  alice: { name: ${PLANTED.person}, email: alice@example.com }
schedules:
  primary:
    timezone: UTC
    layers:
      - { rotation: daily, handoff: "09:00", start: 2026-11-01, participants: [alice] }
alerting:
  maintenance:
    - { name: nightly-db, schedule: "0 2 * * *", duration: 1h, probes: ["db-*"] }
${pages}
`;

const PUBLIC = `
statusPage:
  title: Shop status
  public: true
  probes: [web]
  groups:
    - { name: Checkout, probes: ["api-*"] }
`;

const PROBES = `
- id: web
  kind: http
  url: http://127.0.0.1:9/
  schedule: "*/5 * * * *"
- id: api-payments
  kind: http
  url: http://${PLANTED.url}:8443/pay?key=\${API_KEY}
  headers: { authorization: "Bearer \${API_KEY}" }
  labels: { team: ${PLANTED.label} }
  schedule: "*/5 * * * *"
- id: db-primary
  kind: tcp
  host: ${PLANTED.url}
  port: 5432
  schedule: "*/5 * * * *"
`;

/**
 * The real app over a temp dir with three probes (`web`, `api-payments` on the public page, `db-primary`
 * not), ten days of hourly runs, an open incident whose page was dead-lettered, a resolved one, a
 * silence and a maintenance window; reads need a viewer token. `statusPage` as given (public by default).
 */
export async function pagesApp(
  opts: { statusPage?: string } = {},
): Promise<{ app: App; clock: ManualClock; setStatusPage(yaml: string): void; close(): Promise<void> }> {
  const ws = workspace({ 'config/default.yaml': CONFIG(opts.statusPage ?? PUBLIC), 'probes/all.yaml': PROBES });
  const env = { VIEWER, API_KEY: PLANTED.secret };
  const clock = new ManualClock(NOW);
  let app: App;
  try {
    const read = () => loadConfig({ cwd: ws.dir, env });
    app = createApp({ config: read(), logger: memoryLogger().logger, clock, reloadConfig: read });
  } catch (err) {
    ws.remove();
    throw err;
  }
  await app.store.ready();
  const run = (probeId: string, kind: string, at: number, ok: boolean, ms: number): RunRecord => ({
    probeId,
    kind,
    startedAt: at,
    durationMs: ms,
    ok,
    ...(ok ? {} : { code: 'CONNECT', message: PLANTED.message }),
    values: ok ? { status: 200, ttfb_ms: ms / 2 } : {},
    attempts: 1,
    trigger: 'schedule',
  });
  for (let h = 240; h >= 1; h--) {
    const at = NOW - h * HOUR;
    app.store.append(run('web', 'http', at, true, 80 + (h % 7) * 10));
    app.store.append(run('api-payments', 'http', at, !(h >= 30 && h < 33) && h !== 1, 200 + (h % 5) * 40));
    app.store.append(run('db-primary', 'tcp', at, true, 3));
  }
  await app.store.flush();
  const alerts = app.store.alerts;
  const open = (probeId: string, at: number) =>
    alerts.applyIncidentChange({
      open: {
        probeId,
        rule: 'failures',
        kind: 'http',
        severity: 'critical',
        state: 'open',
        summary: PLANTED.summary,
        labels: { team: PLANTED.label },
        channels: ['slack'],
        openedAt: at,
        flapping: false,
        notified: true,
      },
      event: { at, type: 'opened', actor: 'vigil' },
      notify: (i) => [{ channel: 'slack', action: 'trigger', dedupKey: `${probeId}/failures/${i.id}`, payload: {} }],
    });
  const past = await open('api-payments', NOW - 33 * HOUR);
  await alerts.applyIncidentChange({
    id: past.id,
    patch: { state: 'resolved', resolvedAt: NOW - 30 * HOUR, resolvedBy: 'vigil' },
    event: { at: NOW - 30 * HOUR, type: 'resolved', actor: 'vigil' },
    notify: [],
  });
  const now = await open('api-payments', NOW - HOUR);
  // The page of the open incident was given up on: `/` must flag it.
  for (const item of await alerts.notifications(now.id)) await alerts.markDead(item.id, NOW - HOUR / 2, 'HTTP 500 from slack');
  await alerts.addSilence({
    probes: ['db-*'],
    labels: {},
    startsAt: NOW - HOUR,
    endsAt: NOW + HOUR,
    author: 'dana',
    comment: 'migrating the primary',
    createdAt: NOW - HOUR,
  });
  return {
    app,
    clock,
    /** Rewrites the config with this `statusPage` (apply it with app.reload). */
    setStatusPage: (yaml) => writeFileSync(path.join(ws.dir, 'config/default.yaml'), CONFIG(yaml)),
    async close() {
      await app.server.close();
      await app.store.close();
      ws.remove();
    },
  };
}
