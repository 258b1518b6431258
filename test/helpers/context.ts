import { Writable } from 'node:stream';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import type { ProbeContext, ProbeState } from '../../src/probers/index.js';

/** A silent logger that keeps its lines, for tests that assert on what was logged. */
export function memoryLogger(level = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  // The production logger (redaction, masked emails, text levels) writing to memory.
  return { logger: createLogger({ level, destination: stream }), lines };
}

/** Probe state kept in memory; pass the same one to successive runs to carry it across. */
export function memoryState(initial?: unknown): ProbeState {
  let value = initial;
  return {
    get: <T>() => value as T | undefined,
    set: (v: unknown) => {
      value = structuredClone(v);
    },
  };
}

/** A probe context with a real deadline of `timeoutMs`, as the scheduler would give one run. */
export function probeContext(timeoutMs = 5_000, opts: { clock?: Clock; probesDir?: string; state?: ProbeState } = {}): ProbeContext {
  const clock = opts.clock ?? systemClock;
  return {
    signal: AbortSignal.timeout(timeoutMs),
    deadline: clock.now() + timeoutMs,
    clock,
    logger: memoryLogger().logger,
    probesDir: opts.probesDir ?? process.cwd(),
    state: opts.state ?? memoryState(),
  };
}
