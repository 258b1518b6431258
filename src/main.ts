#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { App } from './app.js';
import { newToken, tokenText } from './cli/index.js';
import { ConfigError, loadConfig } from './config/index.js';
import { codeOf, messageOf, VigilError } from './lib/errors.js';
import { createLogger, type Logger } from './lib/logger.js';
import { claimPidFile, type PidFile } from './lib/pid-file.js';
import { DatabaseError } from './store/index.js';

// The only module that touches `process`: arguments, environment, signals, exit codes.
//   vigil [--pid-file FILE]                         run (also `node dist/main.js`); VIGIL_PID_FILE sets FILE too
//   vigil token [--name ops] [--role operator]      print a new API token and its auth.tokens entry
// Exit codes: 0 stopped cleanly, 1 failed, 2 invalid configuration or arguments, 3 the database
// cannot be used (damaged, read-only, disk full: a restart does not help, the runbook does).

const ROLES = ['viewer', 'operator', 'admin'];

function usage(message: string): never {
  process.stderr.write(`vigil: ${message}\nusage: vigil [--pid-file FILE] | vigil token [--name NAME] [--role viewer|operator|admin]\n`);
  process.exit(2);
}

let args: ReturnType<typeof parseCommandLine>;
function parseCommandLine() {
  return parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { 'pid-file': { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } },
  });
}
try {
  args = parseCommandLine();
} catch (err) {
  usage(messageOf(err));
}
const [command, ...extra] = args.positionals;
if (extra.length > 0 || (command !== undefined && command !== 'token')) usage(`unknown command "${args.positionals.join(' ')}"`);

if (command === 'token') {
  const name = args.values.name ?? 'ops';
  const role = args.values.role ?? 'operator';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) usage(`--name: letters, digits, ".", "_", "-" (at most 64), got "${name}"`);
  if (!ROLES.includes(role)) usage(`--role: one of ${ROLES.join(', ')}, got "${role}"`);
  process.stdout.write(tokenText(newToken(), name, role));
} else {
  await run(args.values['pid-file'] ?? process.env.VIGIL_PID_FILE);
}

async function run(pidPath: string | undefined) {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vigil: invalid configuration, not starting:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.service.service.logLevel });
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
      const { file, problem, runbook, fix } = err;
      logger.fatal({ file, problem, runbook, uid: process.getuid?.(), fix }, 'vigil cannot use its database; not starting');
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
