import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { freePort, workspace } from '../helpers/workspace.js';

// vigil as a host runs it: `node dist/main.js` (the `vigil` command), one process that receives
// the signals, with a pid file; and a start on a database it cannot use fails with one JSON line.

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/main.js');

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}
function start(cwd: string, args: string[] = [], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    env: { ...process.env, VIGIL_ENV: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}
const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('vigil on a host', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  async function service() {
    const port = await freePort();
    const ws = workspace({
      'config/default.yaml': `service:\n  host: 127.0.0.1\n  port: ${port}\n  shutdownTimeout: 2s\nbackup:\n  enabled: false\n`,
    });
    cleanup.push(ws.remove);
    return { ws, port, base: `http://127.0.0.1:${port}` };
  }

  it('is one process: the pid file names it, SIGHUP to that pid reloads, SIGTERM stops it and removes the file', async () => {
    const { ws, base } = await service();
    const pidFile = path.join(ws.dir, 'vigil.pid');
    const p = start(ws.dir, ['--pid-file', pidFile]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await waitFor('the pid file', async () => (existsSync(pidFile) ? true : undefined));
    expect(readFileSync(pidFile, 'utf8')).toBe(`${p.child.pid}\n`);
    // Written after listen: the service answers as soon as the file is there.
    expect((await fetch(`${base}/health`)).status).toBe(200);

    // A second vigil on the same pid file stops before it opens anything, saying who holds it.
    const second = start(ws.dir, [], { VIGIL_PID_FILE: pidFile, PORT: '0' });
    expect(await second.exited).toBe(1);
    expect(second.err()).toBe('');
    expect(jsonLines(second.out())).toEqual([
      expect.objectContaining({
        level: 'fatal',
        msg: 'vigil is already running; not starting',
        problem: expect.stringContaining(`pid ${p.child.pid}`),
      }),
    ]);
    expect(readFileSync(pidFile, 'utf8')).toBe(`${p.child.pid}\n`);

    const pid = Number(readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGHUP');
    await waitFor('the reload', async () => (p.out().includes('"msg":"config reloaded"') ? true : undefined));
    expect(p.child.exitCode).toBeNull();

    process.kill(pid, 'SIGTERM');
    expect(await p.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
    expect(jsonLines(p.out()).at(-1)?.msg).toBe('vigil stopped');
    expect(p.err()).toBe('');
  });

  it('takes over a pid file left by a vigil that was killed', async () => {
    const { ws, base } = await service();
    const pidFile = path.join(ws.dir, 'vigil.pid');
    const first = start(ws.dir, ['--pid-file', pidFile]);
    await waitFor('the pid file', async () => (existsSync(pidFile) ? true : undefined));
    first.child.kill('SIGKILL');
    await first.exited;
    expect(existsSync(pidFile)).toBe(true);
    const next = start(ws.dir, ['--pid-file', pidFile]);
    cleanup.push(() => next.child.kill('SIGKILL'));
    await waitFor('the new pid', async () => (readFileSync(pidFile, 'utf8') === `${next.child.pid}\n` ? true : undefined));
    expect((await fetch(`${base}/health`)).status).toBe(200);
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  });

  it("writes Node's process warnings as JSON log lines, not Node's plain text on stderr", async () => {
    const { ws, base } = await service();
    // Preloaded: a warning emitted on SIGUSR2, once the service is up (a dependency's notice, say).
    const preload = path.join(ws.dir, 'warn.cjs');
    writeFileSync(
      preload,
      "process.on('SIGUSR2', () => process.emitWarning('planted notice', { type: 'PlantedWarning', code: 'VIGIL_TEST_WARNING' }));\n",
    );
    const p = start(ws.dir, [], { NODE_OPTIONS: `--require ${preload}` });
    cleanup.push(() => p.child.kill('SIGKILL'));
    await waitFor('the service', async () => ((await fetch(`${base}/health`).catch(() => undefined))?.ok ? true : undefined));
    p.child.kill('SIGUSR2');
    const line = await waitFor('the warning logged', async () => jsonLines(p.out()).find((l) => l.msg === 'planted notice'));
    expect(line).toMatchObject({ level: 'warn', warning: 'PlantedWarning', code: 'VIGIL_TEST_WARNING' });
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.err()).toBe('');
  });

  it('refuses to start on a damaged database with one JSON line naming the file and the runbook, exit 3, nothing on stderr', async () => {
    const { ws } = await service();
    const first = start(ws.dir);
    await waitFor('the start', async () => (first.out().includes('"msg":"vigil started"') ? true : undefined));
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const file = path.join(ws.dir, 'data/vigil.db');
    const fd = openSync(file, 'r+');
    for (let at = 4096; at < statSync(file).size; at += 4096) writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, at);
    closeSync(fd);

    const p = start(ws.dir);
    expect(await p.exited).toBe(3);
    expect(p.err()).toBe('');
    const lines = jsonLines(p.out());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'fatal',
      msg: 'vigil cannot use its database; not starting',
      file,
      problem: expect.stringMatching(/^the database is damaged/),
      runbook: 'docs/runbooks/restore-vigil-database.md',
    });
    expect(JSON.stringify(lines[0])).not.toMatch(/stack| {4}at /);
  });

  it('refuses a database path it cannot open (SQLITE_CANTOPEN) the same way, pointing at the read-only section', async () => {
    const { ws } = await service();
    mkdirSync(path.join(ws.dir, 'data/is-a-folder.db'), { recursive: true });
    writeFileSync(path.join(ws.dir, 'config/cantopen.yaml'), 'storage:\n  sqlite:\n    path: ./data/is-a-folder.db\n');
    const q = start(ws.dir, [], { VIGIL_CONFIG: path.join(ws.dir, 'config/cantopen.yaml') });
    expect(await q.exited).toBe(3);
    expect(q.err()).toBe('');
    expect(jsonLines(q.out())).toEqual([
      expect.objectContaining({
        file: path.join(ws.dir, 'data/is-a-folder.db'),
        problem: expect.stringMatching(/^cannot open the database for writing/),
        runbook: 'docs/runbooks/restore-vigil-database.md#the-database-is-read-only-or-the-disk-is-full',
        uid: process.getuid?.(),
        fix: `${path.join(ws.dir, 'data/is-a-folder.db')} is a folder: set storage.sqlite.path to a file name`,
      }),
    ]);
  });

  it('`vigil token` prints a new 32-byte base64url token and the auth.tokens entry that reads it from a file', () => {
    const out = execFileSync(process.execPath, [MAIN, 'token', '--name', 'oncall', '--role', 'admin'], { encoding: 'utf8' });
    const [token, ...rest] = out.trim().split('\n');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token as string, 'base64url')).toHaveLength(32);
    expect(rest.at(-1)).toBe('- { name: oncall, token: "${file:/run/secrets/vigil-token-oncall}", role: admin }');
    const again = execFileSync(process.execPath, [MAIN, 'token'], { encoding: 'utf8' }).split('\n')[0];
    expect(again).not.toBe(token);
    expect(() => execFileSync(process.execPath, [MAIN, 'token', '--role', 'root'], { stdio: 'pipe' })).toThrow(/--role: one of viewer/);
  });
});
