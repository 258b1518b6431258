import { Worker } from 'node:worker_threads';
import type { LoadOptions } from '../../src/config/index.js';

/** How one load ended, as the worker saw it. */
export type LoadOutcome =
  | { outcome: 'ConfigError'; code: string; problems: string[]; messageLength: number; ms: number; prototypesClean: boolean }
  | { outcome: 'loaded'; ms: number; prototypesClean: boolean }
  | { outcome: 'other'; name: string; message: string; ms: number; prototypesClean: boolean }
  /** No answer within the bound: the worker was terminated (and a fresh one started for the next load). */
  | { outcome: 'timeout'; ms: number };

/**
 * `loadConfig` in a worker thread (test/helpers/config-worker.mjs), each call with a time bound: a
 * load that hangs or spins is cut off by terminating the worker instead of hanging the test run.
 */
export function configLoader() {
  let worker: Worker | undefined;
  let ready: Promise<Worker> | undefined;
  let seq = 0;

  const start = () => {
    const w = new Worker(new URL('./config-worker.mjs', import.meta.url));
    worker = w;
    ready = new Promise<Worker>((resolve, reject) => {
      w.once('error', reject);
      w.once('message', () => resolve(w));
    });
    return ready;
  };

  return {
    /** Loads with `opts`; `onTimeout` may release whatever the load blocks on (a FIFO) before the worker is ended. */
    async load(opts: LoadOptions, boundMs: number, onTimeout?: () => void): Promise<LoadOutcome> {
      const w = await (ready ?? start());
      const id = ++seq;
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const answer = new Promise<LoadOutcome>((resolve, reject) => {
        const onMessage = (m: { id: number } & LoadOutcome) => {
          if (m.id !== id) return;
          w.off('message', onMessage);
          w.off('error', reject);
          resolve(m);
        };
        w.on('message', onMessage);
        w.once('error', reject);
      });
      const timedOut = new Promise<LoadOutcome>((resolve) => {
        timer = setTimeout(() => resolve({ outcome: 'timeout', ms: performance.now() - started }), boundMs);
      });
      w.postMessage({ id, opts });
      const result = await Promise.race([answer, timedOut]);
      clearTimeout(timer);
      if (result.outcome === 'timeout') {
        onTimeout?.();
        worker = undefined;
        ready = undefined;
        await w.terminate();
      }
      return result;
    },
    async close() {
      const w = worker;
      worker = undefined;
      ready = undefined;
      await w?.terminate();
    },
  };
}
