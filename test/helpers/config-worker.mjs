// A worker thread that runs `loadConfig` on request, so a test can bound each load in time (a load
// that hangs is terminated with the worker, which a synchronous call in the test's own thread could
// not be) and check Object.prototype in the realm the load ran in. Started by test/helpers/config-loader.ts.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { ConfigError, loadConfig } = await import('../../src/config/index.js');

const baseline = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
const arrayBaseline = Object.getOwnPropertyNames(Array.prototype).sort().join(',');

/** Nothing added to or replaced on the prototypes every config object inherits from. */
function prototypesClean() {
  const probe = {};
  for (const _ in probe) return false;
  return (
    Object.getOwnPropertyNames(Object.prototype).sort().join(',') === baseline &&
    Object.getOwnPropertyNames(Array.prototype).sort().join(',') === arrayBaseline &&
    Object.getPrototypeOf(probe) === Object.prototype &&
    probe.polluted === undefined &&
    [].polluted === undefined
  );
}

parentPort.on('message', ({ id, opts }) => {
  const started = performance.now();
  let result;
  try {
    loadConfig(opts);
    result = { outcome: 'loaded' };
  } catch (err) {
    result =
      err instanceof ConfigError
        ? { outcome: 'ConfigError', code: err.code, problems: [...err.problems], messageLength: err.message.length }
        : { outcome: 'other', name: err?.name, message: String(err?.message ?? err).slice(0, 500) };
  }
  parentPort.postMessage({ id, ...result, ms: performance.now() - started, prototypesClean: prototypesClean() });
});
parentPort.postMessage({ ready: true });
