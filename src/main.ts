import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config/index.js';
import { createLogger } from './lib/logger.js';

// The only module that touches `process`: environment, signals, exit codes.

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig({ env: process.env });
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`vigil: invalid configuration, not starting:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  throw err;
}

const logger = createLogger({ level: config.service.service.logLevel });
const app = createApp({ config, logger, reloadConfig: () => loadConfig({ env: process.env }) });

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
      logger.flush();
      process.exit(0);
    })
    .catch((err) => {
      logger.error({ err }, 'shutdown failed');
      logger.flush();
      process.exit(1);
    });
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
// Reload: validate everything, swap in one step, keep the running config on any problem (logged).
process.on('SIGHUP', () => {
  if (stopping) return;
  app.reload('signal:SIGHUP').catch((err) => logger.error({ err }, 'config reload failed'));
});

try {
  await app.start();
} catch (err) {
  logger.fatal({ err }, 'vigil could not start');
  await app.stop().catch(() => {});
  logger.flush();
  process.exit(1);
}
