import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// Secrets planted in every place config can hold one; then every output vigil makes (each GET
// route, the report in all its forms, errors, metrics, the audit log, the log lines) is searched
// for them. None may appear, whole or in part.

const SECRETS = {
  SLACK_BOT_TOKEN: 'xoxb-planted-slack-token-5150',
  HOOK_SECRET: 'planted-webhook-hmac-secret-7331',
  PD_ROUTING_KEY: 'R0UT1NGKEYPLANTED00000000000042',
  SMTP_URL: 'smtp://mailer:Pl4nted-Smtp-Pass@127.0.0.1:9',
  LINK_SECRET: 'planted-link-secret-0123456789abcdefghij',
  SLACK_SIGNING: 'planted-slack-signing-secret-99',
  OPS_TOKEN: 'planted-operator-token-abcdef0123',
  ADMIN_TOKEN: 'planted-admin-token-abcdef012345',
  API_KEY: 'planted-probe-api-key-c0ffee',
  DRILL_PG_PASSWORD: 'planted-pg-password-feed',
};
/** What must never show: each secret, and the distinctive part of the SMTP password. */
const NEEDLES = [...Object.values(SECRETS), 'Pl4nted-Smtp-Pass'];

const CONFIG = `
service: { name: shop, port: 0 }
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
channels:
  slack-ops: { type: slack, token: "\${SLACK_BOT_TOKEN}", channel: "#ops", apiUrl: "http://127.0.0.1:9/api/" }
  hook: { type: webhook, url: "http://127.0.0.1:9/hook", secret: "\${HOOK_SECRET}" }
  pd: { type: pagerduty, routingKey: "\${PD_ROUTING_KEY}", url: "http://127.0.0.1:9/v2/enqueue" }
  mail: { type: email, smtp: "\${SMTP_URL}", from: vigil@example.com, to: [oncall@example.com] }
interactions: { linkSecret: "\${LINK_SECRET}", slackSigningSecret: "\${SLACK_SIGNING}" }
auth:
  tokens:
    - { name: ops, token: "\${OPS_TOKEN}", role: operator }
    - { name: root, token: "\${ADMIN_TOKEN}", role: admin }
`;
const PROBES = `
- id: api
  kind: http
  url: http://127.0.0.1:9/health?key=\${API_KEY}
  headers: { authorization: "Bearer \${API_KEY}" }
  schedule: { every: 1s }
  timeout: 1s
  alert: { failures: 1, channels: [slack-ops, hook, pd, mail] }
- id: db-restore
  kind: restore-drill
  schedule: { every: 1s }
  source: { type: postgres, dir: ./nope }
  target: { url: "postgresql://drill@127.0.0.1:9/postgres", password: "\${DRILL_PG_PASSWORD}" }
`;

describe('secrets never leave vigil', () => {
  let ws: ReturnType<typeof workspace>;
  let app: App;
  let base: string;
  const log = memoryLogger('debug');
  const outputs: Array<{ what: string; text: string }> = [];

  beforeAll(async () => {
    ws = workspace({ 'config/default.yaml': CONFIG, 'probes/shop.yaml': PROBES });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: SECRETS }), logger: log.logger });
    base = await app.start();
    // Let probes fail, incidents open and pages be tried (and fail) against the closed port.
    await new Promise((r) => setTimeout(r, 3_000));
  }, 20_000);
  afterAll(async () => {
    await app.stop();
    ws.remove();
  });

  const collect = async (what: string, init?: RequestInit) => {
    const res = await fetch(`${base}${what}`, init);
    outputs.push({
      what: `${init?.method ?? 'GET'} ${what} → ${res.status}`,
      text: `${JSON.stringify([...res.headers])}\n${await res.text()}`,
    });
    return res.status;
  };

  it('in no API response, page, report, error, metric or audit entry', async () => {
    const admin = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` };
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const incidents = (await (await fetch(`${base}/api/v1/incidents`)).json()) as { incidents: Array<{ id: number }> };
    expect(incidents.incidents.length).toBeGreaterThan(0);
    const fill = (p: string) =>
      p
        .replace('{id}', p.includes('incidents') ? String(incidents.incidents[0]!.id) : p.includes('probes') ? 'api' : '1')
        .replace(/\{[^}]+\}/g, 'x');
    for (const [p, ops] of Object.entries(spec.paths)) if ('get' in ops) await collect(fill(p), { headers: admin });
    for (const f of ['json', 'html', 'markdown']) await collect(`/api/v1/report?format=${f}`);
    await collect('/api/v1/probes/api/runs?limit=50');
    await collect('/api/v1/probes/db-restore/runs?limit=50');
    // Errors: a wrong token, a forbidden role, a bad body, a tampered link.
    await collect('/api/v1/audit', { headers: { authorization: `Bearer ${SECRETS.OPS_TOKEN}x` } });
    await collect('/api/v1/audit', { headers: { authorization: `Bearer ${SECRETS.OPS_TOKEN}` } });
    await collect('/api/v1/silences', {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{"comment": 5}',
    });
    await collect(`/act/${SECRETS.LINK_SECRET}`);
    await collect('/api/v1/channels/hook/test', { method: 'POST', headers: admin });
    await collect('/api/v1/audit?limit=1000', { headers: admin });
    expect(outputs.length).toBeGreaterThan(25);
    for (const o of outputs) for (const n of NEEDLES) expect(o.text.includes(n), `${n} in ${o.what}`).toBe(false);
  });

  it('in no log line', () => {
    expect(log.lines.length).toBeGreaterThan(20);
    const text = log.lines.map((l) => JSON.stringify(l)).join('\n');
    for (const n of NEEDLES) expect(text.includes(n), n).toBe(false);
    // Addresses are masked too.
    expect(text).not.toContain('oncall@example.com');
  });
});
