import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { signAction } from '../../src/lib/signing.js';
import { memoryLogger } from '../helpers/context.js';
import { type PagerDutyApi, startPagerDutyApi } from '../helpers/pagerduty-api.js';
import { startHttp, type TestServer } from '../helpers/servers.js';
import { type SlackApiServer, startSlackApi } from '../helpers/slack-api.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

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
    // Let probes fail, incidents open and pages be tried (and fail) against the closed port: every
    // channel's first failed send is logged, so every kind of output exists before it is searched.
    const tried = () => new Set(log.lines.filter((l) => String(l.msg).startsWith('notification ')).map((l) => l.channel));
    const failed = () => new Set(log.lines.filter((l) => l.msg === 'probe run' && l.ok === false).map((l) => l.probe));
    await waitFor('both probes to fail and every channel to fail a send', () => {
      const channels = tried();
      const probes = failed();
      return ['slack-ops', 'hook', 'pd', 'mail'].every((c) => channels.has(c)) && probes.has('api') && probes.has('db-restore');
    });
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

// Issue 13: the same search, where a secret reaches a run's result (a URL password, a header echoed
// back in a 401 body, whole, cut short, percent-encoded, base64), labels and people read from files,
// and a webhook receiver that echoes only its URL's token. Every incident route, the confirm page,
// each channel's payload as its receiver got it, and the log are searched for every piece.

const PASS = "pl4nted-url-pa'ss-0099";
const TOKEN = 'Bearer PLANTED-PROBE-TOKEN-8d7e6f';
const LABEL = 'planted-label-from-file-5a5a';
const PERSON = 'Planted Person-From-File 7b7b';
const HOOK_TOKEN = 'hook-token-PLANTED-c3c3c3c3';
const SLACK2 = 'xoxb-planted-slack-token-2-6161';
const PD2 = 'R0UT1NGKEYPLANTED222222222222222';
const SMTP_PASS = 'Pl4nted-Smtp-Pass-2';
const LINK2 = 'planted-link-secret-2-0123456789abcdefghij';

/** Each secret whole and in the pieces a careless redactor lets through. */
const PIECES = [
  PASS,
  'pl4nted-url',
  "pa'ss-0099",
  'pa%27ss-0099',
  encodeURIComponent(PASS),
  Buffer.from(`probe:${PASS}`).toString('base64').slice(0, 16),
  'PLANTED-PRO',
  'PROBE-TOKEN',
  'TOKEN-8d7e6f',
  Buffer.from(TOKEN).toString('base64').slice(4, 20),
  encodeURIComponent(TOKEN),
  LABEL,
  'from-file-5a5a',
  PERSON,
  'From-File 7b7b',
  HOOK_TOKEN,
  'PLANTED-c3c3',
  SLACK2,
  PD2,
  SMTP_PASS,
  LINK2,
];

const flat = (s: string) => s.replace(/=\r?\n/g, '');

describe('secrets in results, labels and people never leave vigil (issue 13)', () => {
  let ws: ReturnType<typeof workspace>;
  let app: App;
  let base: string;
  const log = memoryLogger('debug');
  let site: Awaited<ReturnType<typeof target>>;
  let hook: TestServer;
  let slack: SlackApiServer;
  let pd: PagerDutyApi;
  let smtp: SMTPServer;
  const hookBodies: string[] = [];
  const mails: string[] = [];
  const sentAuth: string[] = [];

  beforeAll(async () => {
    // The probed service: answers a plain 200 where a redirect to HTTPS is expected, and 401s that
    // echo the Authorization header back: whole, encoded, and cut by vigil's 120-character excerpt.
    site = await target((req, res) => {
      const auth = String(req.headers.authorization ?? '');
      if (auth) sentAuth.push(auth);
      if (req.url?.startsWith('/plain')) return void res.end('ok');
      if (req.url === '/echo/full') {
        res.writeHead(401, { 'content-type': 'application/json' });
        return void res.end(
          JSON.stringify({
            checks: {
              auth: `rejected ${auth}`,
              encoded: `rejected ${encodeURIComponent(auth)}`,
              base64: `rejected ${Buffer.from(auth).toString('base64')}`,
              basic: `rejected Basic ${Buffer.from(`probe:${PASS}`).toString('base64')}`,
            },
          }),
        );
      }
      // Cut mid-secret: the excerpt's 120 characters end on `Bearer PLANTED-PRO`.
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end(`${'.'.repeat(120 - 'Bearer PLANTED-PRO'.length)}${auth} and more`);
    });
    // A webhook receiver that refuses every page, quoting back only the token part of its URL.
    hook = await startHttp((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hookBodies.push(`${req.url}\n${JSON.stringify(req.headers)}\n${Buffer.concat(chunks).toString('utf8')}`);
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`unknown hook token ${HOOK_TOKEN}`);
      });
    });
    slack = await startSlackApi({ token: SLACK2 });
    pd = await startPagerDutyApi();
    smtp = new SMTPServer({
      authOptional: true,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth: (_auth, _session, cb) => cb(null, { user: 'mailer' }),
      onData(stream, _session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          mails.push(Buffer.concat(chunks).toString('utf8'));
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    const port = new URL(site.url).port;

    ws = workspace({
      'label.txt': `${LABEL}\n`,
      'person.txt': `${PERSON}\n`,
      'config/default.yaml': `
service: { name: shop, port: 0 }
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
alerting: { delivery: { minBackoff: 1s, maxBackoff: 2s } }
channels:
  slack-ops: { type: slack, token: "\${SLACK2}", channel: "#ops", apiUrl: "${slack.apiUrl}" }
  hook: { type: webhook, url: "\${HOOK_URL}" }
  pd: { type: pagerduty, routingKey: "\${PD2}", url: "${pd.url}" }
  mail: { type: email, smtp: "\${SMTP_URL}", from: vigil@example.com, to: [oncall@example.com] }
interactions: { linkSecret: "\${LINK2}" }
people:
  alice: { name: "\${file:person.txt}", email: alice@example.com }
schedules:
  primary:
    timezone: UTC
    layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-01-05, participants: [alice] }]
escalation:
  page-alice:
    steps: [{ notify: ["person:alice"], via: [mail], after: 0m }]
auth:
  tokens: [{ name: root, token: "\${ADMIN_TOKEN}", role: admin }]
`,
      'probes/shop.yaml': `
- id: redirect
  kind: http
  url: "http://probe:\${PASS}@127.0.0.1:${port}/plain?k=\${PASS}"
  expect: { httpsRedirect: true }
  labels: { team: "\${file:label.txt}", tier: web }
  schedule: { every: 1s }
  timeout: 2s
  alert: { failures: 1, channels: [slack-ops, hook, pd, mail], policy: page-alice }
- id: echo-full
  kind: http
  url: "http://probe:\${PASS}@127.0.0.1:${port}/echo/full"
  headers: { authorization: "\${TOKEN}" }
  schedule: { every: 1s }
  timeout: 2s
  alert: { failures: 1, channels: [slack-ops, hook, pd, mail] }
- id: echo-cut
  kind: http
  url: "${site.url}/echo/cut"
  headers: { authorization: "\${TOKEN}" }
  expect: { status: 401, bodyContains: welcome }
  schedule: { every: 1s }
  timeout: 2s
  alert: { failures: 1, channels: [slack-ops, hook, pd, mail] }
`,
    });
    const env = {
      PASS,
      TOKEN,
      SLACK2,
      PD2,
      LINK2,
      ADMIN_TOKEN: SECRETS.ADMIN_TOKEN,
      HOOK_URL: `${hook.url}/hooks/T0042/${HOOK_TOKEN}`,
      SMTP_URL: `smtp://mailer:${SMTP_PASS}@127.0.0.1:${smtpPort}`,
    };
    app = createApp({ config: loadConfig({ cwd: ws.dir, env }), logger: log.logger });
    base = await app.start();
    await waitFor(
      'an incident per probe and a page at every receiver',
      async () => {
        const list = (await (await fetch(`${base}/api/v1/incidents`)).json()) as { incidents: unknown[] };
        return (
          list.incidents.length >= 3 && slack.calls.length >= 3 && pd.events.length >= 3 && hookBodies.length >= 3 && mails.length >= 4
        );
      },
      15_000,
      () =>
        `slack ${slack.calls.length}, pagerduty ${pd.events.length}, webhook ${hookBodies.length}, email ${mails.length}\n` +
        log.lines
          .filter((l) => l.level !== 'debug' && l.level !== 'info')
          .slice(-10)
          .map((l) => JSON.stringify(l))
          .join('\n'),
    );
  }, 30_000);
  afterAll(async () => {
    await app.stop();
    await Promise.all([site.close(), hook.close(), slack.close(), pd.close(), new Promise((r) => smtp.close(() => r(undefined)))]);
    ws.remove();
  });

  const admin = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` };
  const clean = (what: string, text: string) => {
    for (const p of PIECES) expect(text.includes(p), `${p} in ${what}`).toBe(false);
  };

  it('the probes really sent the secrets, and their results say where one was', async () => {
    expect(sentAuth).toContain(TOKEN);
    // The redirect probe's URL credentials went out as Basic auth (issue 13 §4), not in the URL.
    expect(sentAuth).toContain(`Basic ${Buffer.from(`probe:${PASS}`).toString('base64')}`);
    const list = (await (await fetch(`${base}/api/v1/incidents`)).json()) as {
      incidents: Array<{ probe: string; summary: string; labels: Record<string, string> }>;
    };
    const byProbe = new Map(list.incidents.map((i) => [i.probe, i]));
    // The prober sends the URL's credentials as Basic auth and reports the URL without them (issue 13 §4).
    expect(byProbe.get('redirect')?.summary).toMatch(/http:\/\/127\.0\.0\.1:\d+\/plain\?k=<secret> does not redirect/);
    expect(byProbe.get('redirect')?.labels).toEqual({ team: '<secret>', tier: 'web' });
    expect(byProbe.get('echo-full')?.summary).toContain('auth rejected <secret>, encoded rejected <secret>, base64 rejected <secret>');
    expect(byProbe.get('echo-full')?.summary).toContain('basic rejected Basic <secret>');
    expect(byProbe.get('echo-cut')?.summary).toContain('Bearer <secret>');
    // Redacted when made, not only on the way out: what the store holds is clean already.
    await app.store.flush();
    for (const id of ['redirect', 'echo-full', 'echo-cut']) {
      const runs = await app.store.runs({ probeId: id, limit: 100 });
      expect(runs.length).toBeGreaterThan(0);
      clean(`stored runs of ${id}`, JSON.stringify(runs));
    }
    for (const i of await app.store.alerts.incidents({ limit: 100 })) {
      clean(`stored incident ${i.id}`, JSON.stringify(i));
      clean(`timeline of ${i.id}`, JSON.stringify(await app.store.alerts.timeline(i.id)));
      clean(`outbox of ${i.id}`, JSON.stringify(await app.store.alerts.notifications(i.id)));
    }
  });

  it('in no incident route, confirm page, probe, label, person or channel-test answer', async () => {
    const list = (await (await fetch(`${base}/api/v1/incidents`, { headers: admin })).json()) as {
      incidents: Array<{ id: number }>;
    };
    expect(list.incidents.length).toBeGreaterThanOrEqual(3);
    const paths = ['/api/v1/incidents', '/api/v1/incidents?state=open', '/api/v1/probes', '/api/v1/oncall', '/', '/metrics'];
    for (const id of ['redirect', 'echo-full', 'echo-cut']) paths.push(`/api/v1/probes/${id}`, `/api/v1/probes/${id}/runs`);
    for (const { id } of list.incidents) {
      paths.push(`/api/v1/incidents/${id}`);
      paths.push(`/act/${signAction({ incidentId: id, action: 'ack', expiresAt: Date.now() + 600_000 }, LINK2)}`);
    }
    for (const f of ['json', 'html', 'markdown']) paths.push(`/api/v1/report?format=${f}`);
    let pages = 0;
    for (const p of paths) {
      const res = await fetch(`${base}${p}`, { headers: admin });
      const text = await res.text();
      expect(res.status, p).toBeLessThan(400);
      if (p.startsWith('/act/')) {
        // The summary, HTML-escaped: it shows where a secret was.
        expect(text).toContain('&lt;secret&gt;');
        pages++;
      }
      clean(`GET ${p}`, text);
    }
    expect(pages).toBe(list.incidents.length);
    const probes = (await (await fetch(`${base}/api/v1/probes`)).json()) as { probes: Array<{ id: string; labels: object }> };
    expect(probes.probes.find((p) => p.id === 'redirect')?.labels).toEqual({ team: '<secret>', tier: 'web' });
    const oncall = await (await fetch(`${base}/api/v1/oncall`)).json();
    expect(JSON.stringify(oncall)).toContain('"id":"alice"');

    // A channel test through the webhook whose receiver quotes its token back.
    const test = (await (await fetch(`${base}/api/v1/channels/hook/test`, { method: 'POST', headers: admin })).json()) as {
      notification: { id: number };
    };
    const result = await waitFor('the test page to fail', async () => {
      const text = await (await fetch(`${base}/api/v1/channels/hook/tests/${test.notification.id}`)).text();
      return text.includes('unknown hook token') ? text : undefined;
    });
    expect(result).toContain('unknown hook token <secret>');
    clean('channel test', result);
  });

  it('in no payload as each receiver got it', () => {
    expect(slack.calls.length).toBeGreaterThan(0);
    for (const c of slack.calls) clean(`slack ${c.method}`, c.raw);
    expect(pd.requests.length).toBeGreaterThan(0);
    for (const r of pd.requests) {
      // The routing key goes to PagerDuty, as it must; nothing else in the event may hold a secret.
      const { routing_key, ...event } = r.body as Record<string, unknown>;
      expect(routing_key).toBe(PD2);
      clean('pagerduty', JSON.stringify(event));
    }
    expect(hookBodies.length).toBeGreaterThan(0);
    // The receiver is addressed by its URL (token included) — that is where it lives — but no body says it.
    for (const b of hookBodies) clean('webhook body', b.slice(b.indexOf('\n')));
    expect(mails.length).toBeGreaterThan(0);
    for (const m of mails) clean('email', flat(m));
    // The escalation's page to alice went out, with her name hidden.
    expect(mails.some((m) => m.includes('alice@example.com'))).toBe(true);
  });

  it('in no log line', () => {
    const text = log.lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).toContain('<secret>');
    clean('the log', text);
  });
});
