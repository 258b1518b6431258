import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { createSelfBackup } from '../../src/store/self-backup.js';
import { memoryLogger } from '../helpers/context.js';
import { startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

// The runbooks, followed as written: every ```sh runbook block of docs/runbooks/*.md runs in
// bash, in order, against the BUILT service (node dist/main.js in a folder laid out like a host's
// checkout), with the variables docs/runbooks/README.md documents set. A runbook whose commands
// drift from the code fails here.
//
// What stands in for the host: `systemctl` is a script running the unit documented in
// docs/runbooks/README.md (its ExecStart, read from the page, with the paths of this folder; stop =
// SIGTERM to the pid in the pid file, returning once vigil has exited; reload = SIGHUP). Steps that
// need an operator's judgement (writing a probe's YAML, damaging the database) are done by the test
// between the blocks. Not run: the container variants, and the blocks with placeholders left in
// plain ```sh blocks (the self-restore drill an hour later, the incident-response commands).

const ROOT = path.resolve(import.meta.dirname, '../..');
const RUNBOOKS = path.join(ROOT, 'docs/runbooks');
const OPS = 'ops-token-for-the-runbook-test-0123';
const ADMIN = 'admin-token-for-the-runbook-test-01';

/** The ```sh runbook blocks of a page, in order. */
function blocks(page: string): string[] {
  const text = readFileSync(path.join(RUNBOOKS, page), 'utf8');
  return [...text.matchAll(/^( *)```sh runbook\n([\s\S]*?)^\1```$/gm)].map((m) =>
    (m[2] as string)
      .split('\n')
      .map((l) => l.slice((m[1] as string).length))
      .join('\n'),
  );
}

/** The variables "Before any of them" documents: what a runbook may use. */
function documentedVariables(): string[] {
  const [first] = blocks('README.md');
  return [...(first as string).matchAll(/^export (\w+)=/gm)].map((m) => m[1] as string);
}

/** The unit's ExecStart, as the page shows it. */
function execStart(): string {
  const text = readFileSync(path.join(RUNBOOKS, 'README.md'), 'utf8');
  const m = /^ExecStart=(.+)$/m.exec(text);
  if (!m) throw new Error('no ExecStart= in docs/runbooks/README.md');
  return m[1] as string;
}

describe('the runbooks, run as written against the built service', () => {
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;
  let hook: TestServer;
  const hookHits: string[] = [];
  let env: Record<string, string>;
  let data: string;
  let pidFile: string;
  const log = () => readFileSync(path.join(ws.dir, 'vigil.log'), 'utf8');

  /**
   * Runs blocks in one bash (variables carry from block to block), each block's output apart.
   * Asynchronous: the targets and the webhook receiver live in this process and must keep answering.
   */
  async function follow(page: string, which: number[]): Promise<string[]> {
    const all = blocks(page);
    // Each block's output starts on a line of its own (curl's answers end without a newline).
    const script = which.map((i) => `printf '\\n@@block ${i}@@\\n'\n${all[i]}`).join('\n');
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ws.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const code = await new Promise<number | null>((r) => child.once('close', r));
    clearTimeout(timer);
    if (code !== 0)
      throw new Error(`${page} blocks ${which.join(',')} failed (${code}):\n${out}\n${err}\n--- vigil log ---\n${log().slice(-3000)}`);
    return out
      .split(/\n@@block \d+@@\n/)
      .slice(1)
      .map((o) => o.replace(/\n$/, ''));
  }
  const api = async (p: string) => (await fetch(`${env.VIGIL_URL}${p}`)).json() as Promise<Record<string, unknown>>;
  const up = () =>
    waitFor(
      'vigil to answer',
      async () => ((await fetch(`${env.VIGIL_URL}/health`).catch(() => undefined))?.ok ? true : undefined),
      20_000,
    );

  beforeAll(async () => {
    upstream = await target((_req, res) => res.end('ok'));
    hook = await startHttp((req, res) => {
      hookHits.push(req.url ?? '');
      res.end('{}');
    });
    const port = await freePort();
    ws = workspace({
      'config/default.yaml': `
service: { host: 127.0.0.1, port: ${port}, shutdownTimeout: 2s }
storage: { batch: { interval: 100ms } }
backup: { enabled: false }
auth:
  tokens:
    - { name: ops, token: "\${file:./secrets/ops}", role: operator }
    - { name: root, token: "\${file:./secrets/admin}", role: admin }
channels:
  ops-webhook: { type: webhook, url: "${hook.url}/hook" }
alerting:
  maintenance:
    - { name: nightly-vacuum, schedule: "0 3 * * *", duration: 30m, probes: ["db-*"] }
`,
      'probes/db.yaml': `- id: db-primary\n  kind: http\n  url: ${upstream.url}/db\n  schedule: { every: 1s }\n  timeout: 2s\n`,
      'secrets/ops': OPS,
      'secrets/admin': ADMIN,
    });
    // A host's checkout: the built code and its dependencies beside config/ and probes/.
    symlinkSync(path.join(ROOT, 'dist'), path.join(ws.dir, 'dist'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(ws.dir, 'node_modules'));
    copyFileSync(path.join(ROOT, 'package.json'), path.join(ws.dir, 'package.json'));
    data = path.join(ws.dir, 'data');
    pidFile = path.join(ws.dir, 'run/vigil.pid');
    mkdirSync(path.dirname(pidFile), { recursive: true });

    const start = execStart()
      .replace(/^\/usr\/bin\/node /, `${process.execPath} `)
      .replaceAll('/srv/vigil', ws.dir)
      .replaceAll('/run/vigil/vigil.pid', pidFile);
    const bin = path.join(ws.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      path.join(bin, 'systemctl'),
      `#!/bin/bash
# Stands in for systemd running the unit of docs/runbooks/README.md.
set -e
pid() { cat "${pidFile}" 2>/dev/null || true; }
stop() {
  p=$(pid); [ -n "$p" ] || return 0
  kill -TERM "$p"
  while [ -e "${pidFile}" ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; done
}
case "$1" in
  start) cd "${ws.dir}" && (setsid ${start} >> "${ws.dir}/vigil.log" 2>&1 < /dev/null &) ;;
  stop) stop ;;
  restart) stop; cd "${ws.dir}" && (setsid ${start} >> "${ws.dir}/vigil.log" 2>&1 < /dev/null &) ;;
  reload) kill -HUP "$(pid)" ;;
  *) echo "systemctl stand-in: $1 is not supported" >&2; exit 1 ;;
esac
`,
    );
    chmodSync(path.join(bin, 'systemctl'), 0o755);
    const whoami = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
    env = {
      PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`,
      HOME: ws.dir,
      VIGIL_ENV: '',
      VIGIL_URL: `http://127.0.0.1:${port}`,
      VIGIL_OPS_TOKEN: OPS,
      VIGIL_ADMIN_TOKEN: ADMIN,
      VIGIL_DATA: data,
      VIGIL_USER: whoami,
    };
    execFileSync(path.join(bin, 'systemctl'), ['start'], { env });
    await up();
  }, 120_000);

  afterAll(async () => {
    spawnSync(path.join(ws.dir, 'bin/systemctl'), ['stop'], { env, timeout: 15_000 });
    await upstream.close();
    await hook.close();
    ws.remove();
  });

  it('every runbook uses only documented variables, and every page has its blocks', () => {
    const documented = new Set([...documentedVariables(), 'DB', 'BK', 'B', 'T', 'A', 'f', 'i', 'SILENCE_ID', 'CHANNEL', 'TEST_ID']);
    expect([...documented].slice(0, 5)).toEqual(['VIGIL_URL', 'VIGIL_OPS_TOKEN', 'VIGIL_ADMIN_TOKEN', 'VIGIL_DATA', 'VIGIL_USER']);
    for (const page of readdirSync(RUNBOOKS).filter((f) => f.endsWith('.md'))) {
      for (const b of blocks(page)) {
        for (const m of b.matchAll(/\$\{?(\w+)/g)) expect(documented, `${page}: $${m[1]}`).toContain(m[1]);
      }
    }
    for (const page of [
      'README.md',
      'restore-vigil-database.md',
      'add-a-probe.md',
      'silence-for-maintenance.md',
      'move-vigil-to-another-host.md',
    ])
      expect(blocks(page).length, page).toBeGreaterThan(0);
  });

  it('reload (README): the API reload takes, and the metric says so', async () => {
    const [reload, metric] = await follow('README.md', [1, 2]);
    expect(JSON.parse(reload as string)).toMatchObject({ ok: true });
    expect(metric).toContain('vigil_config_last_reload_success 1');
  });

  it('silence for maintenance: the silence says what it covers, is listed, ends early; windows are listed', async () => {
    const [created, listedThenDeleted, open, windows] = await follow('silence-for-maintenance.md', [0, 1, 2, 3]);
    expect(JSON.parse(created as string)).toMatchObject({ author: 'ops', active: true, covers: ['db-primary'] });
    const m = /^(\{.*\})(\d{3})$/s.exec(listedThenDeleted as string);
    expect(JSON.parse(m?.[1] as string).silences).toEqual([
      expect.objectContaining({ comment: 'CHG-1234 PostgreSQL 16 upgrade', covers: ['db-primary'] }),
    ]);
    expect(m?.[2]).toBe('204');
    expect((await api('/api/v1/silences')).silences).toEqual([]);
    expect(JSON.parse(open as string)).toEqual({ incidents: [] });
    expect(JSON.parse(windows as string).windows).toEqual([
      expect.objectContaining({
        name: 'nightly-vacuum',
        covers: ['db-primary'],
        active: expect.any(Boolean),
        nextStartsAt: expect.any(String),
      }),
    ]);
  });

  it('add a probe: checked, reloaded, run now, then seen running', async () => {
    // Step 1 is the operator's YAML: here a probe of the test's own target.
    writeFileSync(
      path.join(ws.dir, 'probes/checkout.yaml'),
      `- id: checkout-health\n  kind: http\n  url: ${upstream.url}/health\n  schedule: { every: 1s }\n  expect: { status: 200 }\n`,
    );
    const [checked, reloaded, ran] = await follow('add-a-probe.md', [0, 1, 2]);
    expect(checked).toMatch(/^config ok: 2 probes from \d+ files/);
    expect(JSON.parse(reloaded as string)).toMatchObject({ ok: true, probes: { added: ['checkout-health'] } });
    expect(JSON.parse(ran as string)).toMatchObject({ probe: 'checkout-health', run: { ok: true, trigger: 'manual' } });
    await waitFor('a scheduled run', async () => ((await api('/api/v1/probes/checkout-health')).state === 'up' ? true : undefined));
    const [verified] = await follow('add-a-probe.md', [3]);
    expect(verified).toContain('"state":"up"');
    expect(verified).toMatch(/vigil_probe_success\{probe="checkout-health",kind="http"\} 1/);
  });

  it('disk full: df and du run, with no dot-files in the folder', async () => {
    expect(readdirSync(data).filter((n) => n.startsWith('.'))).toEqual([]);
    const [du] = await follow('restore-vigil-database.md', [4]);
    expect(du).toContain(data);
  });

  it('restore: a damaged database is replaced by the checked backup and vigil comes back with the old runs', async () => {
    // The newest backup, as vigil writes it (the same code), taken while it runs.
    await waitFor('runs to be written', async () =>
      ((await api('/api/v1/probes/db-primary/runs?limit=5')).runs as unknown[]).length >= 3 ? true : undefined,
    );
    const live = new Database(path.join(data, 'vigil.db'), { readonly: true });
    const backups = path.join(data, 'backups');
    await createSelfBackup({
      source: { backup: (f) => live.backup(f) },
      dir: backups,
      intervalMs: 3_600_000,
      keep: 24,
      clock: systemClock,
      logger: memoryLogger().logger,
    }).runNow();
    const before = live
      .prepare("SELECT count(*) FROM runs r JOIN probes p ON p.id = r.probe WHERE p.name = 'db-primary'")
      .pluck()
      .get() as number;
    live.close();
    expect(before).toBeGreaterThanOrEqual(3);
    // The database is damaged under the running service.
    const file = path.join(data, 'vigil.db');
    const fd = openSync(file, 'r+');
    for (let at = 4096; at < statSync(file).size; at += 4096) writeSync(fd, Buffer.alloc(4096, 0x33), 0, 4096, at);
    closeSync(fd);

    const [stopped, checked, placed, started] = await follow('restore-vigil-database.md', [0, 1, 2, 3]);
    expect(stopped).toBe('');
    expect(checked).toMatch(/vigil-\d{8}T\d{6}Z\.db: OK\nok$/);
    // The check ran on a copy: nothing left beside the backups.
    expect(readdirSync(backups).filter((n) => /-(wal|shm|journal)$/.test(n))).toEqual([]);
    expect(placed).toMatch(/vigil\.db\.broken-\d{8}T\d{6}Z/);
    expect(started).toContain('"status":"ok"');
    // The runs recorded up to the backup are back, and new ones are written.
    const runs = (await api('/api/v1/probes/db-primary/runs?limit=10000')).runs as unknown[];
    expect(runs.length).toBeGreaterThanOrEqual(before);
    const broken = readdirSync(data).filter((n) => n.startsWith('vigil.db.broken-'));
    expect(broken).toHaveLength(1);
  });

  it('move: stop, tar, unpack on the "new host" (an empty data folder), start, and every channel delivers a test page', async () => {
    const runsOf = async () => ((await api('/api/v1/probes/db-primary/runs?limit=10000')).runs as unknown[]).length;
    const before = await runsOf();
    expect(before).toBeGreaterThan(0);
    const [packed] = await follow('move-vigil-to-another-host.md', [0]);
    expect(packed).toMatch(/^[0-9a-f]{64} {2}vigil-data\.tgz$/);
    expect(existsSync(pidFile)).toBe(false);
    renameSync(data, `${data}.old-host`);
    await follow('move-vigil-to-another-host.md', [1]);
    const [verified, tested] = await follow('move-vigil-to-another-host.md', [2, 3]);
    expect(verified).toContain('"status":"ok"');
    expect(verified).toContain('"id":"db-primary"');
    expect(verified).toContain('"name":"ops-webhook"');
    // The last line is the test page's state once it left pending.
    expect(tested?.trim().split('\n').at(-1)).toMatch(/"state":"delivered"/);
    expect(hookHits).toContain('/hook');
    // The data moved with it: the runs from before the move are there.
    expect(await runsOf()).toBeGreaterThanOrEqual(before);
  });
});
