import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../lib/logger.js';
import type { AuditLog } from '../store/index.js';

/** Why a request was turned away before anyone was known. */
export type RefusalReason = 'unauthorized' | 'rate_limited';
const REASONS: RefusalReason[] = ['unauthorized', 'rate_limited'];

/** The reason for a refused anonymous request's status, or undefined for any other answer. */
export function refusalOf(status: number): RefusalReason | undefined {
  return status === 401 ? 'unauthorized' : status === 429 ? 'rate_limited' : undefined;
}

export interface RefusalDeps {
  logger: Logger;
  registry: Registry;
  audit?: Pick<AuditLog, 'record'>;
  now: () => number;
  /** One audit row and one log line per address per window at most. */
  windowMs?: number;
  /** Addresses summarised at once; past this, the rest share one `other` summary. */
  maxAddresses?: number;
}

interface Tally {
  address: string;
  since: number;
  count: number;
  writes: number;
  byReason: Record<RefusalReason, number>;
  lastAction: string;
}

/**
 * Refused anonymous requests (401, 429) as aggregates: a flood of them must not write one audit row
 * and two log lines each (20,000 requests once made 20,000 rows, a 41 MB WAL and 85 MB of log). Each
 * is counted in `vigil_http_refused_total{reason}`; per address and minute they make at most one log
 * line and, when writes were among them, one audit row carrying the count.
 */
export function createRefusals(deps: RefusalDeps) {
  const windowMs = deps.windowMs ?? 60_000;
  const maxAddresses = deps.maxAddresses ?? 10_000;
  const log = deps.logger.child({ module: 'http' });
  const name = 'vigil_http_refused_total';
  // One registry may outlive a server (tests build several apps on one): reuse the family.
  const existing = deps.registry.getSingleMetric(name);
  const counter =
    existing instanceof Counter
      ? existing
      : new Counter({
          name,
          help: 'Requests refused before anyone was known: no or unknown token (unauthorized), over the rate limit (rate_limited).',
          labelNames: ['reason'],
          registers: [deps.registry],
        });
  // Bound once: a flood increments these thousands of times a second, and label lookup is the costly part.
  const byReason: Record<RefusalReason, Counter.Internal> = {
    unauthorized: counter.labels({ reason: 'unauthorized' }),
    rate_limited: counter.labels({ reason: 'rate_limited' }),
  };
  for (const reason of REASONS) byReason[reason].inc(0);

  const tallies = new Map<string, Tally>();
  /** Audit writes not settled yet: close() waits for them. */
  const writing = new Set<Promise<void>>();

  const emit = (t: Tally, until: number) => {
    log.warn(
      { address: t.address, refused: t.count, writes: t.writes, ...t.byReason, since: new Date(t.since).toISOString() },
      'requests refused',
    );
    if (t.writes === 0 || !deps.audit) return;
    const write = deps.audit
      .record({
        at: until,
        actor: 'anonymous',
        action: t.lastAction,
        target: JSON.stringify({ address: t.address }),
        result: 'failure',
        status: t.byReason.rate_limited > 0 ? 429 : 401,
        detail: `${t.writes} refused writes from ${t.address} since ${new Date(t.since).toISOString()} (unauthorized ${t.byReason.unauthorized}, rate limited ${t.byReason.rate_limited})`,
      })
      .catch((err: unknown) => log.error({ err, address: t.address, refused: t.count }, 'audit entry not written'))
      .finally(() => writing.delete(write));
    writing.add(write);
  };

  /** Writes out every tally whose window has closed (all of them with `all`). */
  const flush = (all = false) => {
    const now = deps.now();
    for (const [k, t] of tallies) {
      if (!all && now - t.since < windowMs) continue;
      tallies.delete(k);
      emit(t, now);
    }
  };
  // Quiet addresses still get their summary within a window or so of their last refusal.
  const timer = setInterval(() => flush(), Math.min(windowMs, 10_000));
  timer.unref();

  return {
    /** Counts one refused request; the caller writes no audit row and no log line for it. */
    note(address: string, reason: RefusalReason, write: boolean, action: string): void {
      byReason[reason].inc();
      const now = deps.now();
      let key = address;
      let t = tallies.get(key);
      if (t !== undefined && now - t.since >= windowMs) {
        tallies.delete(key);
        emit(t, now);
        t = undefined;
      }
      if (t === undefined && tallies.size >= maxAddresses) {
        key = 'other';
        t = tallies.get(key);
      }
      if (t === undefined) {
        t = { address: key, since: now, count: 0, writes: 0, byReason: { unauthorized: 0, rate_limited: 0 }, lastAction: action };
        tallies.set(key, t);
      }
      t.count += 1;
      t.byReason[reason] += 1;
      if (write) {
        t.writes += 1;
        t.lastAction = action;
      }
    },
    /** Writes every open tally out and stops the timer: at server close nothing counted is lost. */
    async close(): Promise<void> {
      clearInterval(timer);
      flush(true);
      await Promise.all(writing);
    },
  };
}
