import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

// The push route against the real app on loopback: a job's pings over HTTP become runs at once,
// a silence past period + grace opens an incident and the next ping resolves it. The schedule runs
// on a manual clock, so nothing here waits on the wall clock.

const TOKEN = 'Backup-Push-Token-5f2e9c71a04b';
const OTHER = 'Report-Push-Token-83d1c6e0b29f';
const NEW_TOKEN = 'Rotated-Push-Token-0c7a5e4d9b13';
const ADMIN = 'admin-token-0123456789abcdef';

const CONFIG = `
service: { name: shop, host: 127.0.0.1, port: 0 }
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
scheduler: { spread: false }
auth: { tokens: [ { name: root, token: "\${ADMIN}", role: admin } ] }
`;
const probes = (backupToken: string) =>
  `
- id: nightly-backup
  kind: push
  token: "\${BACKUP_TOKEN}"
  period: 1h
  grace: 5m
  alert: { failures: 1 }
- id: weekly-report
  kind: push
  token: "\${REPORT_TOKEN}"
  period: 7d
  schedule: { every: 5m }
`.replace('${BACKUP_TOKEN}', backupToken);

interface Run {
  ok: boolean;
  code: string | null;
  message: string | null;
  trigger: string;
  values: Record<string, number>;
  details?: Record<string, unknown>;
}

describe('push probes end to end', () => {
  const log = memoryLogger('debug');
  const clock = new ManualClock();
  const env = { ADMIN, BACKUP_TOKEN: TOKEN, REPORT_TOKEN: OTHER, NEW_TOKEN };
  let ws: ReturnType<typeof workspace>;
  let app: App;
  let base: string;

  beforeAll(async () => {
    ws = workspace({ 'config/default.yaml': CONFIG, 'probes/jobs.yaml': probes('${BACKUP_TOKEN}') });
    app = createApp({
      config: loadConfig({ cwd: ws.dir, env }),
      reloadConfig: () => loadConfig({ cwd: ws.dir, env }),
      logger: log.logger,
      clock,
    });
    base = await app.start();
  });
  afterAll(async () => {
    await app?.stop();
    ws?.remove();
  });

  const runs = async (id: string): Promise<Run[]> => {
    const res = await fetch(`${base}/api/v1/probes/${id}/runs?limit=100`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { runs: Run[] }).runs;
  };
  /** Waits for the probe's run count to reach `n`; returns the newest run. */
  const nthRun = async (id: string, n: number): Promise<Run> =>
    waitFor(`run ${n} of ${id}`, async () => {
      const list = await runs(id);
      return list.length >= n ? list[0] : undefined;
    });
  const incidents = async (id: string) =>
    ((await (await fetch(`${base}/api/v1/incidents?probe=${id}`)).json()) as { incidents: Array<{ id: number; state: string }> }).incidents;

  it('a GET ping answers 200 OK and runs the probe at once', async () => {
    const res = await fetch(`${base}/api/v1/push/${TOKEN}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('OK');
    const run = await nthRun('nightly-backup', 1);
    expect(run).toMatchObject({ ok: true, trigger: 'manual', values: { pings: 1, since_success_s: 0 } });
  });

  it('answers 404 for an unknown token or suffix, saying nothing more', async () => {
    for (const url of [`/api/v1/push/Unknown-Token-000000000000`, `/api/v1/push/${TOKEN}/256`, `/api/v1/push/${TOKEN}/done`]) {
      const res = await fetch(`${base}${url}`, { method: 'POST' });
      expect(res.status, url).toBe(404);
      expect(await res.json()).toEqual({ error: 'Not Found', code: 'VIGIL_ERR_NOT_FOUND', message: 'not found' });
    }
  });

  it('start → success over POST with a body gives duration_s and keeps the body', async () => {
    const before = (await runs('nightly-backup')).length;
    expect((await fetch(`${base}/api/v1/push/${TOKEN}/start`, { method: 'POST' })).status).toBe(200);
    await nthRun('nightly-backup', before + 1);
    clock.advanceSync(42_000);
    const res = await fetch(`${base}/api/v1/push/${TOKEN}/0`, { method: 'POST', body: 'dumped 12 tables, 3.1 GB' });
    expect(res.status).toBe(200);
    const run = await nthRun('nightly-backup', before + 2);
    expect(run).toMatchObject({ ok: true, values: { duration_s: 42 }, details: { body: 'dumped 12 tables, 3.1 GB' } });
  });

  it('a non-zero exit code fails the run with PUSH_FAILED and its body as the message; the next success clears it', async () => {
    const before = (await runs('nightly-backup')).length;
    const res = await fetch(`${base}/api/v1/push/${TOKEN}/2`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'pg_dump: error: connection refused',
    });
    expect(res.status).toBe(200);
    const failed = await nthRun('nightly-backup', before + 1);
    expect(failed).toMatchObject({ ok: false, code: 'PUSH_FAILED' });
    expect(failed.message).toMatch(/exit code 2 .*: pg_dump: error: connection refused$/);
    await waitFor('an incident for the failure', async () => (await incidents('nightly-backup')).some((i) => i.state === 'open'));
    await fetch(`${base}/api/v1/push/${TOKEN}`, { method: 'POST' });
    expect(await nthRun('nightly-backup', before + 2)).toMatchObject({ ok: true });
    await waitFor('the incident to resolve', async () => (await incidents('nightly-backup')).every((i) => i.state === 'resolved'));
  });

  it('opens an incident when pings stop for period + grace, and the next ping resolves it at once', async () => {
    // 1h period + 5m grace after the last success: the scheduled run past it fails and pages.
    await clock.advance(66 * 60_000);
    const missing = await waitFor('a PUSH_MISSING run', async () => (await runs('nightly-backup')).find((r) => r.code === 'PUSH_MISSING'));
    expect(missing).toMatchObject({ ok: false, trigger: 'schedule' });
    expect(missing.message).toMatch(/^no success ping for 1h\d+m, last at /);
    const open = await waitFor('an open incident', async () => (await incidents('nightly-backup')).find((i) => i.state === 'open'));
    const before = (await runs('nightly-backup')).length;
    expect((await fetch(`${base}/api/v1/push/${TOKEN}`)).status).toBe(200);
    expect(await nthRun('nightly-backup', before + 1)).toMatchObject({ ok: true, trigger: 'manual' });
    await waitFor('the incident to resolve', async () =>
      (await incidents('nightly-backup')).some((i) => i.id === open.id && i.state === 'resolved'),
    );
  });

  it('the other probe, declared at start and never pinged, does not page before its own period + grace', async () => {
    const list = await runs('weekly-report');
    expect(list.length).toBeGreaterThan(0);
    expect(list.every((r) => r.ok)).toBe(true);
  });

  it('refuses a body over 10 kB with 413', async () => {
    const res = await fetch(`${base}/api/v1/push/${TOKEN}/fail`, { method: 'POST', body: 'x'.repeat(11 * 1024) });
    expect(res.status).toBe(413);
  });

  it('never shows a token: not in the log lines, not in /api/v1/probes, not in the runs', async () => {
    const texts = [
      JSON.stringify(log.lines),
      await (await fetch(`${base}/api/v1/probes`)).text(),
      await (await fetch(`${base}/api/v1/probes/nightly-backup`)).text(),
      JSON.stringify(await runs('nightly-backup')),
    ];
    for (const text of texts) for (const t of [TOKEN, OTHER]) expect(text).not.toContain(t.slice(0, 12));
    // The request log does have the pings, with the token hidden and the suffix kept.
    const urls = log.lines.flatMap((l) => {
      const url = (l.req as { url?: string } | undefined)?.url;
      return url?.includes('/push/') ? [url] : [];
    });
    expect(urls).toContain('/api/v1/push/<token>');
    expect(urls).toContain('/api/v1/push/<token>/start');
    expect(urls).toContain('/api/v1/push/<token>/2');
  });

  it('no audit entry per ping: a job is not an operator', async () => {
    // An operator's write in between, so the audit has something in it to tell apart.
    const reload = await fetch(`${base}/api/v1/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(reload.status).toBe(200);
    const res = await fetch(`${base}/api/v1/audit?limit=1000`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('/api/v1/admin/reload');
    expect(text).not.toContain('/api/v1/push');
  });

  it('after a reload the tokens follow the new config', async () => {
    writeFileSync(path.join(ws.dir, 'probes/jobs.yaml'), probes('${NEW_TOKEN}'));
    const result = await app.reload('test');
    expect(result).toMatchObject({ ok: true });
    expect((await fetch(`${base}/api/v1/push/${TOKEN}`)).status).toBe(404);
    expect((await fetch(`${base}/api/v1/push/${NEW_TOKEN}`)).status).toBe(200);
  });

  it('rate-limits pings per address with 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 125; i++) statuses.push((await fetch(`${base}/api/v1/push/Unknown-Token-000000000000`)).status);
    expect(statuses.filter((s) => s === 404).length).toBeLessThanOrEqual(120);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe('push tokens at load', () => {
  it('refuses two push probes with the same token, naming both and not the token', () => {
    const ws = workspace({
      'config/default.yaml': 'service: { port: 0 }\n',
      'probes/jobs.yaml': `
- { id: a, kind: push, token: "\${T}", period: 1h }
- { id: b, kind: push, token: "\${T}", period: 1d }
- { id: c, kind: push, token: short, period: 1d }
`,
    });
    try {
      let problems: readonly string[] = [];
      try {
        loadConfig({ cwd: ws.dir, env: { T: TOKEN } });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems = err.problems;
      }
      expect(problems).toContain(
        'probes/jobs.yaml: [1].token: expected a token of its own, got the token of push probe "a" (probes/jobs.yaml: [0]); give "b" another',
      );
      expect(problems.some((p) => p.startsWith('probes/jobs.yaml: [2].token: expected a secret of 16 to 256'))).toBe(true);
      expect(problems.join('\n')).not.toContain(TOKEN);
    } finally {
      ws.remove();
    }
  });

  it('probes/examples/push.yaml loads offline, its tokens from the environment', () => {
    const example = readFileSync(path.resolve(import.meta.dirname, '../../probes/examples/push.yaml'), 'utf8');
    const ws = workspace({ 'config/default.yaml': 'service: { port: 0 }\n', 'probes/push.yaml': example });
    try {
      const env = { BACKUP_PUSH_TOKEN: TOKEN, INVOICE_WORKER_PUSH_TOKEN: OTHER };
      const config = loadConfig({ cwd: ws.dir, env });
      expect(config.probes.map((p) => [p.id, p.kind, p.schedule])).toEqual([
        ['nightly-backup', 'push', { every: '1m' }],
        ['invoice-worker', 'push', { every: '1m' }],
      ]);
    } finally {
      ws.remove();
    }
  });

  it('gives a push probe a schedule of every minute when it names none', () => {
    const ws = workspace({
      'config/default.yaml': 'service: { port: 0 }\n',
      'probes/jobs.yaml': '- { id: a, kind: push, token: "${T}", period: 1h }\n',
    });
    try {
      const config = loadConfig({ cwd: ws.dir, env: { T: TOKEN } });
      expect(config.probes[0]?.schedule).toEqual({ every: '1m' });
    } finally {
      ws.remove();
    }
  });
});
