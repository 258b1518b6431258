import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

// The image built by podman from the Dockerfile as it is, then run: what the README, the
// Dockerfile and the runbooks promise of it. .ci/container-image builds it (stand-in bases where the
// real ones cannot be pulled, see .ci/stand-in-bases); its layers are cached between runs on one
// machine. Skipped, saying why, only where podman is not installed and this is not CI (.ci/run
// installs it): under CI a missing podman fails the build step below.

const ROOT = path.resolve(import.meta.dirname, '../..');
const IMAGE = 'localhost/vigil:test';
const HAS_PODMAN = ['/usr/bin/podman', '/usr/local/bin/podman'].some((p) => existsSync(p));
const SKIP = !HAS_PODMAN && !process.env.CI;
const NOTE = SKIP ? ' (skipped: podman is not installed; `apt-get install podman buildah debootstrap runc`, as .ci/run does)' : '';
const run = promisify(execFile);

// runc, not crun (crun refuses the hybrid cgroup layout); ulimits at the machine's hard limits,
// nproc no higher than kernel.pid_max (podman lowers its own to that). Host networking: vigil
// listens on a free loopback port (PORT) and nothing is sent beyond this machine.
function runFlags(): string[] {
  const [nofile, nproc] = execFileSync('bash', ['-c', 'ulimit -Hn; ulimit -Hu'], { encoding: 'utf8' }).trim().split('\n');
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const files = nofile === 'unlimited' ? 1048576 : Number(nofile);
  const procs = nproc === 'unlimited' ? pidMax : Math.min(Number(nproc), pidMax);
  return ['--runtime', 'runc', '--network', 'host', '--ulimit', `nofile=${files}:${files}`, '--ulimit', `nproc=${procs}:${procs}`];
}

async function podman(args: string[], timeout = 60_000): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('podman', args, { timeout, maxBuffer: 16 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    if (typeof e.code !== 'number') throw err;
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code };
  }
}

/** Runs `.ci/container-image`; resolves to its output, rejects with it when it fails. */
function buildImage(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, '.ci/container-image'), IMAGE], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`.ci/container-image exited ${code}:\n${out.slice(-4000)}`)),
    );
  });
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe.skipIf(SKIP)(`the container image${NOTE}`, () => {
  const name = `vigil-test-${process.pid}`;
  const volume = `vigil-test-${process.pid}`;
  const token = randomBytes(32).toString('base64url');
  const figures: Record<string, string> = {};
  let flags: string[];
  let port: number;
  let configDir: string;
  let startedAt: number;

  const base = () => `http://127.0.0.1:${port}`;
  const runContainer = (extra: string[] = []) =>
    podman([
      'run',
      '-d',
      '--name',
      name,
      ...flags,
      ...extra,
      '--stop-timeout',
      '30',
      '-e',
      `PORT=${port}`,
      '-e',
      'VIGIL_CONFIG=/run/vigil-test/ci.yaml',
      '-v',
      `${volume}:/data`,
      '-v',
      `${configDir}:/run/vigil-test:ro`,
      // One more probe beside the shipped ones: ping over loopback (the icmp kind).
      '-v',
      `${configDir}/ping.yaml:/app/probes/ci-ping.yaml:ro`,
      IMAGE,
    ]);
  const runNow = async (probe: string) => {
    const res = await fetch(`${base()}/api/v1/probes/${probe}/run?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { run: { ok: boolean; code?: string; message?: string; values?: Record<string, number> } }).run;
  };
  const logs = async () => {
    const r = await podman(['logs', name]);
    return r.stdout + r.stderr;
  };
  const healthy = () =>
    waitFor(
      'GET /health 200 from the container',
      async () => (await fetch(`${base()}/health`)).status === 200,
      30_000,
      () => execFileSync('podman', ['logs', '--tail', '20', name], { encoding: 'utf8' }),
    );
  const exec = (cmd: string[], env: string[] = []) => podman(['exec', ...env.flatMap((e) => ['-e', e]), name, ...cmd]);

  // The build: 7.3 min on a clean machine with 2 busy cores, about a minute with cached layers.
  beforeAll(async () => {
    flags = runFlags();
    const t0 = Date.now();
    const out = await buildImage();
    figures.build = `${((Date.now() - t0) / 1000).toFixed(0)} s (${out.match(/^stand-in-bases: .*$/gm)?.join('; ') ?? 'no stand-ins'})`;
    port = await closedPort();
    // A config layer (VIGIL_CONFIG) adding an operator token: the drill is run through the API.
    configDir = mkdtempSync(path.join(os.tmpdir(), 'vigil-container-'));
    chmodSync(configDir, 0o755);
    // The first self-backup 5 s after start instead of a minute: the test waits for it.
    const layer = `auth:\n  tokens:\n    - { name: ci, token: "${token}", role: operator }\nbackup: { firstAfter: 5s }\n`;
    writeFileSync(path.join(configDir, 'ci.yaml'), layer, {
      mode: 0o644,
    });
    writeFileSync(path.join(configDir, 'ping.yaml'), '- { id: ci-ping, kind: icmp, host: 127.0.0.1, schedule: "0 0 1 1 *", count: 1 }\n', {
      mode: 0o644,
    });
    await podman(['rm', '-f', '-t', '0', name]);
    await podman(['volume', 'rm', '-f', volume]);
    const started = await runContainer();
    expect(started.code, started.stderr).toBe(0);
    startedAt = Date.now();
    await healthy();
  }, 1_500_000);

  afterAll(async () => {
    if (!SKIP) {
      await podman(['rm', '-f', '-t', '0', name]).catch(() => undefined);
      await podman(['volume', 'rm', '-f', volume]).catch(() => undefined);
      if (configDir) rmSync(configDir, { recursive: true, force: true });
      process.stdout.write(`container image figures: ${JSON.stringify(figures)}\n`);
    }
  });

  it('is the image the Dockerfile describes: user vigil, tini as entrypoint, the HEALTHCHECK kept', async () => {
    const [image] = JSON.parse((await podman(['image', 'inspect', IMAGE])).stdout) as Array<{
      Size: number;
      Healthcheck?: { Test: string[]; Interval: number; Timeout: number };
      Config: { User: string; Entrypoint: string[]; Cmd: string[]; Volumes: Record<string, unknown>; Env: string[] };
    }>;
    figures.size = `${(image?.Size ?? 0) / 1e6} MB`;
    expect(image?.Config).toMatchObject({ User: 'vigil', Entrypoint: ['/usr/bin/tini', '--'], Cmd: ['node', 'dist/main.js'] });
    // runtime.env, the environment vigil is measured under.
    expect(image?.Config.Env).toEqual(expect.arrayContaining(['MALLOC_ARENA_MAX=2', 'NODE_OPTIONS=--max-semi-space-size=8']));
    expect(Object.keys(image?.Config.Volumes ?? {})).toEqual(['/data']);
    // Kept only in the docker format (OCI has no HEALTHCHECK): 30 s interval, 5 s timeout.
    expect(image?.Healthcheck).toMatchObject({ Test: ['CMD', 'node', '-e', expect.any(String)], Interval: 30e9, Timeout: 5e9 });
  });

  it('has the tools the probe kinds run, and no build tools, sources or build leftovers', async () => {
    const script = [
      'for c in tini node pg_dump pg_restore psql pg_amcheck ping k6 chromium gcc g++ cc make python3 tsc npm-check; do',
      '  printf "%s=%s\\n" "$c" "$(command -v "$c" || echo missing)"; done',
      'echo "k6version=$(k6 version)"',
      'echo "pgdump=$(pg_dump --version)"',
      'echo "chromiumversion=$(chromium --version 2>/dev/null)"',
      'echo "app=$(ls /app | tr "\\n" " ")"',
      'echo "ts=$(find /app -path /app/node_modules -prune -o -name "*.ts" -print | head -3 | tr "\\n" " ")"',
      'echo "sqlite=$(find node_modules/better-sqlite3 -type f ! -path "*/lib/*" | sort | tr "\\n" " ")"',
      'echo "archives=$(find node_modules -name "*.a" -o -name "*.o" -o -name "test_extension.node" | head -3 | tr "\\n" " ")"',
      'echo "emptyscopes=$(find node_modules -mindepth 1 -maxdepth 1 -type d -name "@*" -empty | tr "\\n" " ")"',
      'echo "buildconfig=$(ls /usr/local/etc; find / -xdev -name "vigil-build-ca.crt" 2>/dev/null)"',
    ].join('\n');
    const r = await podman(['run', '--rm', ...flags, '--entrypoint', 'sh', IMAGE, '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    const facts = Object.fromEntries(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
    for (const tool of ['tini', 'node', 'pg_dump', 'pg_restore', 'psql', 'pg_amcheck', 'ping', 'k6', 'chromium']) {
      expect(facts[tool], tool).toMatch(/^\//);
    }
    for (const tool of ['gcc', 'g++', 'cc', 'make', 'python3', 'tsc']) expect(facts[tool], tool).toBe('missing');
    expect(facts.k6).toBe('/usr/bin/k6');
    expect(facts.k6version).toMatch(/^k6 v\d+\.\d+\.\d+/);
    expect(facts.pgdump).toMatch(/^pg_dump \(PostgreSQL\) 15\./);
    expect(facts.chromiumversion).toMatch(/^Chromium \d+/);
    expect(facts.app?.split(' ').sort()).toEqual(['config', 'data', 'dist', 'docs', 'node_modules', 'package.json', 'probes']);
    expect(facts.ts).toBe('');
    expect(facts.sqlite?.split(' ')).toEqual([
      'node_modules/better-sqlite3/LICENSE',
      'node_modules/better-sqlite3/README.md',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/better-sqlite3/package.json',
    ]);
    expect(facts.archives).toBe('');
    expect(facts.emptyscopes).toBe('');
    // The build's npm config and CA bundle were mounted for the build only.
    expect(facts.buildconfig).toBe('');
  });

  it('runs node as uid 10001 under tini (pid 1), on a volume owned by 10001', async () => {
    const r = await exec([
      'sh',
      '-c',
      'cat /proc/1/comm; for s in /proc/[0-9]*/status; do awk \'/^Name|^PPid|^Uid/ {printf "%s ", $2} END {print ""}\' "$s"; done; stat -c %u:%g /data',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('tini');
    // Name PPid Uid: node is tini's child and runs as 10001.
    expect(lines).toContain('node 1 10001 ');
    expect(lines.at(-1)).toBe('10001:10001');
  });

  it('answers its HEALTHCHECK command (healthy), which fails against a dead port', async () => {
    const r = await podman(['healthcheck', 'run', name]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [image] = JSON.parse((await podman(['image', 'inspect', IMAGE])).stdout) as Array<{
      Healthcheck: { Test: string[] };
    }>;
    const command = image?.Healthcheck.Test.slice(1) ?? [];
    expect(command[0]).toBe('node');
    expect((await exec(command)).code).toBe(0);
    expect((await exec(command, [`PORT=${await closedPort()}`])).code).toBe(1);
  });

  it('checks its config inside the image', async () => {
    // The command on the image's PATH, as a user types it.
    const r = await exec(['vigil', 'check-config']);
    expect(r.code, r.stderr).toBe(0);
    // default.yaml, the VIGIL_CONFIG layer, probes/vigil.yaml's four probes and ci-ping.
    expect(r.stdout).toBe('config ok: 5 probes from 4 files\n');
  });

  it('reloads its config on SIGHUP', async () => {
    expect((await podman(['kill', '--signal', 'HUP', name])).code).toBe(0);
    await waitFor(
      'a successful reload in /metrics',
      async () => /^vigil_config_reloads_total\{result="success"\} 1$/m.test(await (await fetch(`${base()}/metrics`)).text()),
      10_000,
    );
  });

  it('writes its self-backup to the volume and its restore drill passes', async () => {
    // The first self-backup is taken 5 s after start (backup.firstAfter in the config layer).
    const backup = await waitFor(
      'the first self-backup in /data/backups',
      async () => (await exec(['sh', '-c', 'ls /data/backups'])).stdout.match(/^vigil-.*\.db$/m)?.[0],
      Math.max(10_000, startedAt + 30_000 - Date.now()),
    );
    expect(backup).toMatch(/^vigil-/);
    const drill = await runNow('vigil-self-restore');
    expect(drill.ok, JSON.stringify(drill)).toBe(true);
    expect(drill.values?.rows_checked).toBeGreaterThanOrEqual(5);
  }, 120_000);

  it('without NET_RAW (podman does not grant it) the icmp run says what to add', async () => {
    const failed = await runNow('ci-ping');
    expect(failed).toMatchObject({ ok: false, code: 'PING_MISSING', message: expect.stringMatching(/EPERM.*--cap-add NET_RAW/) });
  });

  it('stops cleanly on SIGTERM, and a new container on the same volume keeps the data', async () => {
    const before = (await (await fetch(`${base()}/api/v1/probes/vigil-self-restore/runs`)).json()) as { runs: Array<{ id: string }> };
    expect(before.runs.length).toBeGreaterThan(0);
    const t0 = Date.now();
    expect((await podman(['stop', '-t', '30', name])).code).toBe(0);
    figures.stop = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await podman(['inspect', '--format', '{{.State.ExitCode}}', name])).stdout.trim()).toBe('0');
    expect(jsonLines(await logs()).map((l) => l.msg)).toContain('shutting down');

    await podman(['rm', name]);
    expect((await runContainer(['--cap-add', 'NET_RAW'])).code).toBe(0);
    await healthy();
    const after = (await (await fetch(`${base()}/api/v1/probes/vigil-self-restore/runs`)).json()) as { runs: Array<{ id: string }> };
    expect(after.runs.map((r) => r.id)).toEqual(expect.arrayContaining(before.runs.map((r) => r.id)));
  }, 60_000);

  it('pings with NET_RAW (Docker grants it by default)', async () => {
    // This container was started with --cap-add NET_RAW (the restart above).
    const ok = await runNow('ci-ping');
    expect(ok, JSON.stringify(ok)).toMatchObject({ ok: true, values: { replies: 1, loss_ratio: 0 } });
  });

  it('refuses a root-owned folder mounted at /data with one JSON line: the path, its uid and the fix', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-rootdata-'));
    try {
      chmodSync(dir, 0o755);
      const r = await podman(['run', '--rm', ...flags, '-e', `PORT=${await closedPort()}`, '-v', `${dir}:/data`, IMAGE]);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      // stderr holds only what vigil wrote (nothing), less podman's own complaint that it cannot
      // start health timers without systemd (its log format: time="…" level=error msg="…").
      expect(r.stderr.replace(/^time="[^"]*" level=\w+ msg="unable to get systemd connection[^\n]*\n/gm, '')).toBe('');
      expect(jsonLines(r.stdout)).toEqual([
        expect.objectContaining({
          level: 'fatal',
          msg: 'vigil cannot use its database; not starting',
          file: '/app/data/vigil.db',
          problem: expect.stringMatching(/^cannot open the database for writing/),
          uid: 10001,
          fix: expect.stringMatching(/^give uid 10001 write access to \/data: chown -R 10001:10001 \/data /),
        }),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
