import { ConfigError, loadConfig } from '../config/index.js';

// `npm run check-config`: validates config and probe definitions as `npm start` would, without starting.
try {
  const config = loadConfig({ env: process.env, cwd: process.cwd() });
  process.stdout.write(`config ok: ${config.probes.length} probes from ${config.files.length} files\n`);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.problems.join('\n')}\n`);
  process.exitCode = 1;
}
