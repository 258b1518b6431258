import path from 'node:path';
import { createSecretBook, type LoadedConfig } from '../config/index.js';
import type { Clock } from '../lib/clock.js';
import { formatDuration } from '../lib/duration.js';
import type { Logger } from '../lib/logger.js';
import { createPushInbox } from '../lib/push-inbox.js';
import { runProbe, Shutdown } from '../scheduler/index.js';
import type { RunRecord } from '../store/index.js';

/** What `vigil run-once` needs besides the config: time and where the probers' own lines go. */
export interface RunOnceDeps {
  clock: Clock;
  logger: Logger;
  /** Ends the run early (Ctrl-C): the prober is aborted as at shutdown. */
  signal?: AbortSignal;
}

/**
 * Runs one probe as the scheduler would (its prober, timeout, retries, and the redaction of the
 * probe's secrets), without a store, a server or alerting: for CI pipelines and for writing a
 * probe. Undefined when no probe has that id.
 */
export async function runOnce(config: LoadedConfig, probeId: string, deps: RunOnceDeps): Promise<RunRecord | undefined> {
  // Ids come from the command line: looked up in a Map, so `__proto__` is just an unknown id.
  const def = new Map(config.probes.map((p) => [p.id, p])).get(probeId);
  if (def === undefined) return undefined;
  const secrets = createSecretBook(config);
  const shutdown = new Shutdown();
  deps.signal?.addEventListener('abort', () => shutdown.abort(), { once: true });
  let state: unknown;
  // vigil's timers are unref'd (a pending probe timer never keeps a service alive); here the run is
  // the whole program, so something must hold the process open while a retry delay or a deadline waits.
  const alive = setInterval(() => {}, 60_000);
  try {
    return await runProbe(def, 'manual', {
      clock: deps.clock,
      logger: deps.logger,
      probesDir: path.resolve(config.baseDir, config.service.probes.dir),
      // Kept for this one run only: a probe that carries state between runs (a canary) starts afresh.
      state: { get: <T>() => state as T | undefined, set: (v) => (state = v) },
      shutdown,
      redactor: secrets.forProbe(def),
      push: createPushInbox(),
    });
  } finally {
    clearInterval(alive);
  }
}

/** A run for a person: the outcome on the first line, then each value on its own. */
export function runText(run: RunRecord): string {
  const head = run.ok
    ? `${run.probeId} (${run.kind}): ok in ${formatDuration(run.durationMs)}`
    : `${run.probeId} (${run.kind}): FAILED ${run.code ?? ''} in ${formatDuration(run.durationMs)}: ${run.message ?? ''}`;
  const lines = [head];
  if (run.attempts > 1) lines.push(`  attempts: ${run.attempts}`);
  const values = Object.entries(run.values);
  const width = Math.max(0, ...values.map(([name]) => name.length));
  for (const [name, value] of values) lines.push(`  ${name.padEnd(width)}  ${value}`);
  return `${lines.join('\n')}\n`;
}
