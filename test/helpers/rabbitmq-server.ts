import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { freePort } from './postgres.js';
import { waitFor } from './wait.js';

/** Debian's RabbitMQ scripts (package rabbitmq-server), run directly: /usr/sbin's wrapper would switch to the rabbitmq user. */
export const RABBITMQ_BIN = process.env.VIGIL_TEST_RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin';
const EPMD = process.env.VIGIL_TEST_EPMD ?? 'epmd';

/** A RabbitMQ node started for a test file, on free loopback ports, everything it writes in a temp folder. */
export interface TestRabbit {
  port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may log in over loopback). */
  url: string;
  /** How long the node took from spawn to taking an AMQP login, in ms. */
  startMs: number;
  /** Runs `rabbitmqctl -q <args>` against this node and returns its output (the test's own view of the broker). */
  ctl(...args: string[]): Promise<string>;
  /** Kills the node's process group and its epmd, and removes the folder. */
  stop(): Promise<void>;
}

/**
 * Starts rabbitmq-server in the foreground with its own epmd (so nothing outlives the test), its
 * node name unique, its distribution and AMQP listeners on loopback, and no plugins.
 */
export async function startRabbit(): Promise<TestRabbit> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-rabbitmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  // localhost resolves on every host we run on; the machine's own name may not.
  const node = `rabbit-${randomBytes(4).toString('hex')}@localhost`;
  await writeFile(path.join(dir, 'rabbitmq.conf'), 'disk_free_limit.absolute = 1MB\nlog.file.level = warning\n');
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(path.join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The Erlang cookie is written to and read from HOME.
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_PLUGINS_EXPAND_DIR: path.join(dir, 'plugins-expand'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const started = Date.now();
  // Our own epmd in the foreground: the one Erlang would start is a daemon that outlives every kill.
  const epmd: ChildProcess = spawn(EPMD, ['-port', String(epmdPort), '-address', '127.0.0.1'], { env, stdio: 'ignore', detached: true });
  // Listening before the node starts: a node that finds no epmd starts its own daemon, which would
  // race ours for the port and leave the node unregistered (it exits) or a daemon behind.
  await waitFor(`epmd on port ${epmdPort}`, () => canConnect(epmdPort), 10_000).catch(async (err: unknown) => {
    if (epmd.pid !== undefined && epmd.exitCode === null) process.kill(-epmd.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const out = openSync(path.join(dir, 'server.out'), 'a');
  const server: ChildProcess = spawn(path.join(RABBITMQ_BIN, 'rabbitmq-server'), [], {
    env,
    cwd: dir,
    stdio: ['ignore', out, out],
    // Its own process group: the script, beam.smp and its helpers all go with one kill.
    detached: true,
  });
  closeSync(out);
  const killGroup = (child: ChildProcess) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const kill = () => {
    killGroup(server);
    killGroup(epmd);
  };
  // A crashed test run must not leave a broker behind.
  process.once('exit', kill);
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  // A node that exits (a port taken after all) fails the start at once, not after the whole wait.
  let exited: () => void = () => {};
  const gaveUp = new Promise<void>((resolve) => {
    exited = resolve;
  });
  server.once('exit', (code) => {
    if (code !== null) exited();
  });
  try {
    await Promise.race([
      waitFor(
        `rabbitmq-server on port ${port}`,
        async () => {
          if (server.exitCode !== null) return 'exited';
          const conn = await connect(url, { timeout: 1_000 });
          await conn.close();
          return 'up';
        },
        30_000,
      ).then((how) => {
        if (how === 'exited') throw new Error(`rabbitmq-server exited with ${server.exitCode}`);
      }),
      gaveUp.then(() => {
        throw new Error(`rabbitmq-server exited with ${server.exitCode} before it took a login`);
      }),
    ]);
  } catch (err) {
    const said = await readFile(path.join(dir, 'server.out'), 'utf8').catch(() => '');
    const log = await readFile(path.join(dir, 'log', `${node}.log`), 'utf8').catch(() => '');
    kill();
    process.removeListener('exit', kill);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message} (${node}, port ${port})\n${said.slice(-2_000)}\n${log.slice(-2_000)}`);
  }
  const startMs = Date.now() - started;
  const run = promisify(execFile);
  return {
    port,
    url,
    startMs,
    async ctl(...args: string[]) {
      const { stdout } = await run(path.join(RABBITMQ_BIN, 'rabbitmqctl'), ['-q', '-n', node, ...args], { env, timeout: 20_000 });
      return stdout;
    },
    async stop() {
      process.removeListener('exit', kill);
      const exited = (child: ChildProcess) =>
        child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve));
      const gone = Promise.all([exited(server), exited(epmd)]);
      kill();
      await gone;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Whether something accepts a TCP connection on the loopback port. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
