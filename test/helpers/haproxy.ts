import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './postgres.js';
import { waitFor } from './wait.js';

const HAPROXY = process.env.VIGIL_TEST_HAPROXY ?? '/usr/sbin/haproxy';

/** A haproxy started for one test, in front of loopback backends. */
export interface TestHaproxy {
  /** The balancer's URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Milliseconds from spawn to the first answer through it. */
  startMs: number;
  /** Each backend server's state as haproxy's own stats say it (`UP`, `DOWN`, …), by server name `s0`, `s1`, …. */
  states(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export interface StartHaproxyOptions {
  /** The backends' ports on 127.0.0.1, in order: they become servers s0, s1, …. */
  backends: number[];
  /** The health check interval (`inter`), e.g. `100ms` or `60s`. */
  inter: string;
  /** The health check's path (`option httpchk GET <path>`). */
  checkPath?: string;
}

/**
 * Starts haproxy in the foreground (`-db`) with a config in a temp folder: HTTP mode, round robin,
 * `option httpchk` with the given `inter` (fall 2, rise 1), and `retries 0` so a request that meets a dead backend
 * answers 503 at once rather than being retried (which would hide it). A second frontend serves
 * the stats as CSV, so a test can wait for haproxy's own view of a server instead of sleeping.
 */
export async function startHaproxy(opts: StartHaproxyOptions): Promise<TestHaproxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-haproxy-'));
  const [port, statsPort] = [await freePort(), await freePort()];
  const cfg = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode http',
    '  retries 0',
    '  timeout connect 1s',
    '  timeout client 5s',
    '  timeout server 5s',
    // Without it a check's answer must come within `inter`: on a loaded machine a 100 ms check flaps.
    '  timeout check 2s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'frontend stats',
    `  bind 127.0.0.1:${statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    'backend be',
    '  balance roundrobin',
    `  option httpchk GET ${opts.checkPath ?? '/health'}`,
    `  default-server inter ${opts.inter} fall 2 rise 1`,
    ...opts.backends.map((p, i) => `  server s${i} 127.0.0.1:${p} check`),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, cfg);
  const started = Date.now();
  const child: ChildProcess = spawn(HAPROXY, ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  const kill = () => child.kill('SIGKILL');
  // A crashed test run must not leave a balancer behind.
  process.once('exit', kill);
  const stop = async () => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      kill();
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const states = async () => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const rows = csv.split('\n').map((l) => l.split(','));
    const status = rows[0]?.indexOf('status') ?? -1;
    return Object.fromEntries(rows.filter((r) => r[0] === 'be' && /^s\d+$/.test(r[1] ?? '')).map((r) => [r[1], r[status] ?? '']));
  };
  try {
    await waitFor(
      `haproxy on port ${port}`,
      async () => (await fetch(`http://127.0.0.1:${port}/`)).status > 0,
      10_000,
      () => stderr,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, startMs: Date.now() - started, states, stop };
}
