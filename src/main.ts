#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { App } from './app.js';
import { loadRunOnce, newToken, tokenText, USAGE } from './cli/index.js';
import type { LoadedConfig } from './config/index.js';
import { systemClock } from './lib/clock.js';
import { codeOf, messageOf, VigilError } from './lib/errors.js';
import { loadUnderHeapLimit } from './lib/heap.js';
import { createLogger, type Logger } from './lib/logger.js';
import { claimPidFile, type PidFile } from './lib/pid-file.js';
import { bytes } from './lib/size.js';
import { DatabaseError, ownerFix } from './store/index.js';

// The config (and with it every prober) is imported where a command needs it, not here: loading it
// takes over a second, and `--help`, `--version`, `token` or a mistyped option answer at once.
const configModule = () => import('./config/index.js');

// The only module that touches `process`: arguments, environment, signals, exit codes.
// Commands and exit codes: see src/cli/usage.ts (`vigil --help`).

const ROLES = ['viewer', 'operator', 'admin'];
const COMMANDS = ['check-config', 'run-once', 'token'];

function usage(message: string): never {
  process.stderr.write(`vigil: ${message}\nusage: vigil --help\n`);
  process.exit(2);
}

let args: ReturnType<typeof parseCommandLine>;
function parseCommandLine() {
  return parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      'pid-file': { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
  });
}
try {
  args = parseCommandLine();
} catch (err) {
  usage(messageOf(err));
}
const [command, ...rest] = args.positionals;
const options = args.values;
// An option another command takes is an error here, not silently ignored.
const only = (allowed: string[]) => {
  const extra = Object.keys(options).filter((o) => !allowed.includes(o));
  if (extra.length > 0) usage(`${command === undefined ? '' : `${command}: `}unknown option --${extra[0]}`);
};

if (options.help) {
  process.stdout.write(USAGE);
} else if (options.version) {
  // package.json sits beside dist/ (and src/): the version shipped is the one in the manifest.
  const manifest: { version: string } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`vigil ${manifest.version}\n`);
} else if (command !== undefined && !COMMANDS.includes(command)) {
  usage(`unknown command "${command}"`);
} else if (command === 'token') {
  only(['name', 'role']);
  if (rest.length > 0) usage(`token: unexpected argument "${rest[0]}"`);
  const name = options.name ?? 'ops';
  const role = options.role ?? 'operator';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) usage(`--name: letters, digits, ".", "_", "-" (at most 64), got "${name}"`);
  if (!ROLES.includes(role)) usage(`--role: one of ${ROLES.join(', ')}, got "${role}"`);
  process.stdout.write(tokenText(newToken(), name, role));
} else if (command === 'check-config') {
  only(['config']);
  if (rest.length > 0) usage(`check-config: unexpected argument "${rest[0]}"`);
  // Invalid config: 1, as the checker always answered (CI scripts test for it).
  const config = await configOrExit(1);
  process.stdout.write(`config ok: ${config.probes.length} probes from ${config.files.length} files\n`);
} else if (command === 'run-once') {
  only(['config', 'json']);
  if (rest.length !== 1) usage('run-once: name exactly one probe id');
  process.exitCode = await runOneProbe(rest[0]!, options.json === true);
  // A prober's pooled connections (keep-alive sockets, drivers) would keep the process alive.
  process.exit();
} else {
  only(['pid-file']);
  if (rest.length > 0) usage(`unexpected argument "${rest[0]}"`);
  await run(options['pid-file'] ?? process.env.VIGIL_PID_FILE);
}

/** The config as `vigil` would start with it (plus --config), or every problem on stderr and exit. */
async function configOrExit(code: number): Promise<LoadedConfig> {
  const { ConfigError, loadConfig } = await configModule();
  const env = options.config === undefined ? process.env : { ...process.env, VIGIL_CONFIG: options.config };
  try {
    return loadConfig({ env, cwd: process.cwd() });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`vigil: invalid configuration:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(code);
  }
}

/**
 * Node's process warnings (a dependency's deprecation or support notice, e.g. the AWS SDK's
 * "Node 22 will be required") become log lines: Node's own printer writes them as plain text on
 * stderr, beside vigil's JSON lines. Removing the listeners removes that printer.
 */
function logWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    const code = codeOf(w);
    logger.warn({ warning: w.name, ...(code ? { code } : {}) }, w.message);
  });
}

/** `vigil run-once`: 0 passed, 1 failed, 2 unknown probe or invalid config. Ctrl-C aborts the run. */
async function runOneProbe(probeId: string, json: boolean): Promise<number> {
  const config = await configOrExit(2);
  const { runOnce, runText } = await loadRunOnce();
  // The probers' own lines (warnings and worse) go to stderr: stdout carries only the result.
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  logWarnings(logger);
  const interrupted = new AbortController();
  process.once('SIGINT', () => interrupted.abort());
  const result = await runOnce(config, probeId, { clock: systemClock, logger, signal: interrupted.signal });
  if (result === undefined) {
    const known = config.probes.map((p) => p.id);
    const listed =
      known.length === 0 ? 'none' : `${known.slice(0, 20).join(', ')}${known.length > 20 ? `, … (${known.length} in all)` : ''}`;
    process.stderr.write(`vigil: run-once: no probe "${probeId}"; the config has: ${listed}\n`);
    return 2;
  }
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : runText(result));
  return result.ok ? 0 : 1;
}

async function run(pidPath: string | undefined) {
  const { ConfigError, loadConfig } = await configModule();
  let config: LoadedConfig;
  try {
    config = loadUnderHeapLimit(
      () => loadConfig({ env: process.env, cwd: process.cwd() }),
      (loaded) => bytes(loaded.service.service.heapHeadroom),
    );
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vigil: invalid configuration, not starting:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.service.service.logLevel });
  logWarnings(logger);
  // Exit once the last line is written: pino writes asynchronously.
  const exit = (code: number) => logger.flush(() => process.exit(code));

  let pidFile: PidFile | undefined;
  let app: App;
  try {
    // Claimed before the database is opened: a second vigil on the same data stops here.
    pidFile =
      pidPath === undefined || pidPath === ''
        ? undefined
        : claimPidFile(pidPath, process.pid, (pid) => {
            try {
              process.kill(pid, 0);
              return true;
            } catch (err) {
              // EPERM: the process exists but belongs to another user; it is alive all the same.
              return codeOf(err) === 'EPERM';
            }
          });
    // Loaded here, not at the top: `vigil token` needs none of it and answers at once.
    const { createApp } = await import('./app.js');
    // Unique among instances sharing a database, and told apart from this host's earlier runs (a
    // container's pid is 1 every time): host, pid and a random suffix.
    const instance = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    app = createApp({ config, logger, instance, reloadConfig: () => loadConfig({ env: process.env, cwd: process.cwd() }) });
  } catch (err) {
    // One line a person can act on: which file, what is wrong, the uid vigil runs as and the fix
    // where one is known (a root-owned folder mounted at a container's /data), which runbook.
    if (err instanceof DatabaseError) {
      const { file, problem, runbook, folder } = err;
      const uid = process.getuid?.();
      const gid = process.getgid?.();
      const fix = folder !== undefined && uid !== undefined && gid !== undefined ? ownerFix(folder, uid, gid) : err.fix;
      logger.fatal({ file, problem, runbook, uid, fix }, 'vigil cannot use its database; not starting');
      return exit(3);
    }
    if (err instanceof VigilError && err.code === 'VIGIL_ERR_CONFLICT') {
      logger.fatal({ problem: err.message, pidFile: pidPath }, 'vigil is already running; not starting');
      return exit(1);
    }
    logger.fatal({ err }, 'vigil could not start');
    return exit(1);
  }
  handleSignals(app, logger, () => pidFile?.remove(), exit);

  try {
    await app.start();
    pidFile?.write();
  } catch (err) {
    logger.fatal({ err }, 'vigil could not start');
    await app.stop().catch(() => {});
    exit(1);
  }
}

function handleSignals(app: App, logger: Logger, removePidFile: () => void, exit: (code: number) => void) {
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting');
    logger.flush();
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal; exiting now');
      logger.flush();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app
      .stop()
      .then(() => {
        // Gone only once the database is closed: a runbook waits for the file before copying the data.
        removePidFile();
        exit(0);
      })
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Reload: validate everything, swap in one step, keep the running config on any problem (logged).
  process.on('SIGHUP', () => {
    if (stopping) return;
    app.reload('signal:SIGHUP').catch((err) => logger.error({ err }, 'config reload failed'));
  });
}
