import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './postgres.js';
import { waitFor } from './wait.js';

/** Debian's redis-server (package redis-server); override with VIGIL_TEST_REDIS. */
export const REDIS_SERVER = process.env.VIGIL_TEST_REDIS ?? 'redis-server';

/** A redis-server started for a test, on a free loopback port, its data in a temp folder. */
export interface TestRedis {
  host: string;
  port: number;
  /** `redis://[:password@]127.0.0.1:<port>`. */
  url: string;
  /** The data folder (`dir`): RDB and AOF files go here. */
  dir: string;
  /** Sends one command over RESP and returns the raw reply text (a test's own view, not vigil's client). */
  command(...args: string[]): Promise<string>;
  /** Stops the server at once (SIGKILL: no final save) and removes its folder. */
  stop(): Promise<void>;
}

/** Options for {@link startRedis}; each becomes a `--name value` argument of redis-server. */
export interface StartRedisOptions {
  /** `requirepass`. */
  password?: string;
  /** `appendonly yes`. */
  aof?: boolean;
  /** `save` points, e.g. `'3600 1'`; `''` turns RDB snapshots off. Default `''`. */
  save?: string;
  /** `replicaof 127.0.0.1 <port>` of a running primary. */
  replicaOf?: number;
  /** More `--name value` pairs, as given. */
  extra?: string[];
}

/** Starts redis-server in the foreground (its own process), waits until it answers PING. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', opts.save ?? '', '--daemonize', 'no'];
  args.push('--appendonly', opts.aof ? 'yes' : 'no', '--logfile', path.join(dir, 'redis.log'));
  if (opts.password !== undefined) args.push('--requirepass', opts.password, '--masterauth', opts.password);
  if (opts.replicaOf !== undefined) args.push('--replicaof', '127.0.0.1', String(opts.replicaOf));
  args.push(...(opts.extra ?? []));
  const child: ChildProcess = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
  const kill = () => child.kill('SIGKILL');
  // A crashed test run must not leave a server behind.
  process.once('exit', kill);
  const auth = opts.password === undefined ? [] : ['AUTH', opts.password];
  const command = async (...cmd: string[]) => {
    if (auth.length > 0) {
      const reply = await resp(port, [auth, cmd]);
      return reply.slice(reply.indexOf('\r\n') + 2);
    }
    return resp(port, [cmd]);
  };
  try {
    await waitFor(
      `redis-server on port ${port}`,
      async () => (await command('PING')).startsWith('+PONG'),
      10_000,
      () => `redis-server ${args.join(' ')}`,
    );
  } catch (err) {
    kill();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const auth64 = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`;
  return {
    host: '127.0.0.1',
    port,
    url: `redis://${auth64}127.0.0.1:${port}`,
    dir,
    command,
    async stop() {
      process.removeListener('exit', kill);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        kill();
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes the commands as RESP arrays and collects every reply until the last one is complete. */
function resp(port: number, commands: string[][]): Promise<string> {
  const wire = commands.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join('');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error('redis test client: no reply in 5 s')), 5_000);
    socket.on('connect', () => socket.write(wire));
    socket.on('data', (d) => {
      text += d.toString('utf8');
      if (complete(text, commands.length)) {
        clearTimeout(timer);
        socket.end();
        resolve(text);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Whether `text` holds `n` whole top-level replies (simple, error, integer and bulk; arrays count as whole once their items are). */
function complete(text: string, n: number): boolean {
  let at = 0;
  const one = (): boolean => {
    const eol = text.indexOf('\r\n', at);
    if (eol < 0) return false;
    const type = text[at];
    const head = text.slice(at + 1, eol);
    at = eol + 2;
    if (type === '$') {
      const len = Number(head);
      if (len < 0) return true;
      if (Buffer.byteLength(text.slice(at)) < len + 2) return false;
      at += Buffer.from(text.slice(at)).subarray(0, len).toString('utf8').length + 2;
      return true;
    }
    if (type === '*') {
      const len = Number(head);
      for (let i = 0; i < len; i++) if (!one()) return false;
    }
    return true;
  };
  for (let i = 0; i < n; i++) if (!one()) return false;
  return true;
}
