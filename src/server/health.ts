import type { AlertFigures } from '../alerting/index.js';
import type { Clock } from '../lib/clock.js';
import type { Scheduler } from '../scheduler/index.js';
import type { Store } from '../store/index.js';

/** One named check of vigil's own health. */
export interface HealthCheck {
  ok: boolean;
  [detail: string]: unknown;
}

/** The scheduler's loop has not beaten for this long: it is stuck. */
const HEARTBEAT_STALE_MS = 30_000;
/** A notification waiting longer than this means delivery is stuck (a provider down, a bad token). */
const OUTBOX_STUCK_MS = 15 * 60_000;

export interface HealthDeps {
  clock: Clock;
  store: Pick<Store, 'health'>;
  scheduler: Pick<Scheduler, 'health'>;
  /** Alerting's figures as last read in the background: never a query per check. */
  alerts(): AlertFigures;
  /** With several instances on one database: this one, and who leads. */
  cluster?: { instance: string; isLeader(): boolean; holder(): string | undefined };
}

/**
 * vigil's own health, check by check, from what its parts saw (the store's last write and
 * heartbeat, the scheduler's beat, the last outbox figures): it answers at once whatever the
 * database is doing, and a database that does not answer is named in it.
 */
export function createHealth(deps: HealthDeps): () => Record<string, HealthCheck> {
  const { clock } = deps;
  return () => {
    const db = deps.store.health();
    const { outbox, held } = deps.alerts();
    const heldCount = held.reduce((n, h) => n + h.count, 0);
    const sched = deps.scheduler.health();
    const age = clock.now() - sched.lastBeat;
    const cluster = deps.cluster;
    return {
      database: { ok: db.writable, queued: db.queued, ...(db.error ? { error: db.error } : {}) },
      ...(cluster
        ? { leader: { ok: true, instance: cluster.instance, leader: cluster.isLeader(), holder: cluster.holder() ?? null } }
        : {}),
      scheduler: {
        ok: sched.running && age < HEARTBEAT_STALE_MS,
        inFlight: sched.inFlight,
        lastBeat: new Date(sched.lastBeat).toISOString(),
        ...(sched.running ? {} : { error: 'stopped' }),
        ...(age >= HEARTBEAT_STALE_MS ? { error: `no heartbeat for ${Math.round(age / 1000)}s` } : {}),
      },
      // Held pages are pages not going out: unhealthy (and no heartbeat) until their channel is back.
      outbox: {
        ok: outbox.oldestPendingMs < OUTBOX_STUCK_MS && heldCount === 0,
        pending: outbox.pending,
        oldestPendingSeconds: Math.round(outbox.oldestPendingMs / 1000),
        dead: outbox.dead,
        held: heldCount,
        heldChannels: held.map((h) => h.channel),
        ...(outbox.oldestPendingMs >= OUTBOX_STUCK_MS
          ? { error: `a notification has waited ${Math.round(outbox.oldestPendingMs / 60_000)} min` }
          : {}),
        ...(heldCount > 0 ? { error: heldError(held) } : {}),
      },
    };
  };
}

/** What /health says of held pages: how many, for which channels, and what brings them out. */
const heldError = (held: ReadonlyArray<{ channel: string; count: number }>) =>
  `${held.reduce((n, h) => n + h.count, 0)} notification(s) held: channel(s) ${held.map((h) => h.channel).join(', ')} not configured; add them back and reload`;
