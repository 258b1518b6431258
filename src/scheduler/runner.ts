import type { Clock, TimerHandle } from '../lib/clock.js';
import { formatDuration, ms } from '../lib/duration.js';
import { messageOf } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { PushInbox } from '../lib/push-inbox.js';
import { noRedaction, type Redactor } from '../lib/redactor.js';
import { type AnyProber, type ProbeDefinition, type ProbeResult, type ProbeState, proberFor } from '../probers/index.js';
import type { RunRecord, Trigger } from '../store/index.js';

/**
 * Ends every run in flight at shutdown. A plain set of callbacks rather than an AbortSignal listener
 * per attempt: EventTarget listeners cost microseconds each, at a thousand runs a second.
 */
export class Shutdown {
  private readonly live = new Set<() => void>();
  private done = false;

  get aborted(): boolean {
    return this.done;
  }

  /** Calls `fn` at shutdown (at once if it already happened); returns the way to stop listening. */
  onAbort(fn: () => void): () => void {
    if (this.done) {
      fn();
      return () => {};
    }
    this.live.add(fn);
    return () => this.live.delete(fn);
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    for (const fn of this.live) fn();
    this.live.clear();
  }
}

/** What one run needs besides its definition. */
export interface RunDeps {
  clock: Clock;
  logger: Logger;
  probesDir: string;
  /** vigil's data folder, handed to every run's context (artifacts); absent in tests that keep none. */
  dataDir?: string;
  state: ProbeState;
  /** Aborts every run at shutdown. */
  shutdown: Shutdown;
  /** The kind's prober; looked up from the registry unless given (tests pass their own). */
  prober?: AnyProber;
  /** The probe's secrets: the run's record is redacted with it before anyone sees it. */
  redactor?: Redactor;
  /** Pings for push probes, handed to every run's context. */
  push?: PushInbox;
}

/** How long a prober that ignores its aborted signal is waited for, unless its kind says otherwise. */
const DEFAULT_GRACE_MS = 250;

/**
 * Runs a probe once, retrying a failure `retry.count` times after `retry.delay` to confirm it.
 * Every attempt has the probe's timeout as its deadline, enforced with an AbortSignal; a prober
 * that does not honour it is cut off shortly after. Never throws.
 */
export async function runProbe(def: ProbeDefinition, trigger: Trigger, deps: RunDeps): Promise<RunRecord> {
  const { clock } = deps;
  const prober = deps.prober ?? proberFor(def.kind);
  const startedAt = clock.now();
  let attempts = 0;
  let result: ProbeResult;
  let durationMs: number;
  for (;;) {
    attempts++;
    const t0 = clock.now();
    result = await attempt(prober, def, deps);
    durationMs = clock.now() - t0;
    if (result.ok || attempts > def.retry.count || deps.shutdown.aborted) break;
    deps.logger.debug({ probe: def.id, code: result.code, attempt: attempts }, 'probe failed; retrying to confirm');
    if (!(await pause(ms(def.retry.delay), deps))) break;
  }
  // Redacted where it is made: the store, metrics, incidents, pages and logs only ever see this copy.
  const redactor = deps.redactor ?? noRedaction;
  return {
    probeId: def.id,
    kind: def.kind,
    startedAt,
    durationMs,
    ok: result.ok,
    ...(result.ok ? {} : { code: result.code ?? 'INTERNAL', message: redactor.text(result.message ?? 'failed without a reason') }),
    values: redactor.value(result.values),
    ...(result.details !== undefined ? { details: redactor.value(result.details) } : {}),
    attempts,
    trigger,
  };
}

/** Waits between attempts; false when shutdown cut the wait short. */
function pause(delayMs: number, deps: RunDeps): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = deps.clock.setTimeout(() => {
      stop();
      resolve(true);
    }, delayMs);
    const stop = deps.shutdown.onAbort(() => {
      deps.clock.clearTimeout(timer);
      resolve(false);
    });
  });
}

async function attempt(prober: AnyProber, def: ProbeDefinition, deps: RunDeps): Promise<ProbeResult> {
  const { clock } = deps;
  const timeoutMs = ms(def.timeout);
  const controller = new AbortController();
  const started = clock.now();
  const timedOut = (): ProbeResult => ({
    ok: false,
    code: 'TIMEOUT',
    message: `timed out after ${formatDuration(clock.now() - started)} (timeout ${def.timeout})`,
    values: {},
  });
  const shutdownOr = (r: ProbeResult): ProbeResult =>
    deps.shutdown.aborted && !r.ok ? { ...r, code: 'ABORTED', message: 'aborted: vigil is shutting down' } : r;

  // A prober that does not honour its signal still cannot hold the run: after the abort and a grace
  // (longer for kinds that must wind down), the run ends for it.
  let cut: (r: ProbeResult) => void = () => {};
  const cutOff = new Promise<ProbeResult>((resolve) => {
    cut = resolve;
  });
  let grace: TimerHandle | undefined;
  const abort = (reason: unknown) => {
    if (controller.signal.aborted) return;
    controller.abort(reason);
    grace = clock.setTimeout(() => cut(shutdownOr(timedOut())), prober.abortGraceMs?.(def) ?? DEFAULT_GRACE_MS);
  };
  const deadline = clock.setTimeout(() => abort(new DOMException('probe deadline', 'TimeoutError')), timeoutMs);
  const unlisten = deps.shutdown.onAbort(() => abort(new Error('vigil is shutting down')));

  try {
    const run = prober.probe(def, {
      signal: controller.signal,
      deadline: started + timeoutMs,
      clock,
      logger: deps.logger,
      probesDir: deps.probesDir,
      ...(deps.dataDir !== undefined ? { dataDir: deps.dataDir } : {}),
      state: deps.state,
      ...(deps.redactor ? { redactor: deps.redactor } : {}),
      ...(deps.push ? { push: deps.push } : {}),
    });
    return shutdownOr(normalise(await Promise.race([run, cutOff])));
  } catch (err) {
    if (controller.signal.aborted) return shutdownOr(timedOut());
    // The error's text may quote the probe's own config (a URL, a header): redacted before it is logged.
    deps.logger.error({ err: (deps.redactor ?? noRedaction).value(err), probe: def.id }, 'prober threw instead of returning a failure');
    return { ok: false, code: 'INTERNAL', message: `probe crashed: ${messageOf(err)}`, values: {} };
  } finally {
    clock.clearTimeout(deadline);
    if (grace !== undefined) clock.clearTimeout(grace);
    unlisten();
  }
}

/** Keeps only finite numbers as values, whatever a prober returned. */
function normalise(r: ProbeResult): ProbeResult {
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.values ?? {})) if (typeof v === 'number' && Number.isFinite(v)) values[k] = v;
  return { ...r, ok: r.ok === true, values };
}
