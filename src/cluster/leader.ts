import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Store } from '../store/index.js';

export interface LeadershipOptions {
  store: Pick<Store, 'lease' | 'release'>;
  /** The lease's name: one leader per name. */
  name: string;
  /** This instance, unique among those sharing the database. */
  holder: string;
  /** A leader that stops renewing loses the lease this long after its last renewal. */
  ttlMs: number;
  clock: Clock;
  logger: Logger;
  /** Became leader: start what only the leader does (alert rules, the outbox, housekeeping). */
  onGain(): Promise<void> | void;
  /** No longer leader (lost the lease, or stopping): stop it again. */
  onLose(): Promise<void> | void;
}

export interface Leadership {
  start(): void;
  /** Steps down (releasing the lease, so another takes over at once) and stops renewing. */
  stop(): Promise<void>;
  isLeader(): boolean;
  /** Who holds the lease, as last seen. */
  holder(): string | undefined;
}

/**
 * One leader among the instances sharing a database, by a lease renewed every third of its TTL.
 * A leader that cannot renew (database unreachable) steps down before its lease can have expired,
 * so two instances never both believe they lead; one that dies is replaced within one TTL.
 */
export function createLeadership(opts: LeadershipOptions): Leadership {
  const log = opts.logger.child({ module: 'leader', holder: opts.holder });
  const every = Math.max(50, Math.floor(opts.ttlMs / 3));
  let leader = false;
  let lastHolder: string | undefined;
  /** Until when this instance's lease is known to hold (from its last successful renewal). */
  let heldUntil = 0;
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  let stopped = true;
  // Gain and lose run one at a time, in order, even when the lease flips quickly.
  let transition: Promise<void> = Promise.resolve();

  const become = (next: boolean) => {
    if (next === leader) return;
    leader = next;
    log.info({ leader: next }, next ? 'became leader' : 'stepped down');
    transition = transition
      .then(() => (next ? opts.onGain() : opts.onLose()))
      .catch((err) => log.error({ err }, next ? 'starting leader work failed' : 'stopping leader work failed'));
  };

  /** The renewal in flight: never two at once, so answers cannot arrive out of order. */
  let renewing = false;
  const tick = () => {
    if (stopped) return;
    timer = opts.clock.setTimeout(tick, every);
    const now = opts.clock.now();
    if (renewing) {
      // A renewal that has not answered by the lease's expiry (less a renewal interval, the same
      // margin as a failed one) means leadership is lost: another instance may take the lease as
      // soon as it expires, and a late answer cannot show it did not.
      if (leader && now >= heldUntil - every) {
        log.warn({ waitedMs: every }, 'lease renewal has not answered; stepping down');
        become(false);
      }
      return;
    }
    renewing = true;
    opts.store
      .lease(opts.name, opts.holder, opts.ttlMs, now)
      .then(
        (state) => {
          if (stopped) return;
          lastHolder = state.holder;
          // Counted from when the renewal was asked, not answered: the lease runs from then.
          if (state.held) heldUntil = now + opts.ttlMs;
          // An answer that comes too late to lead on is a loss, as above.
          become(state.held && opts.clock.now() < heldUntil - every);
        },
        (err) => {
          log.warn({ err }, 'lease renewal failed');
          // Step down a renewal interval before the lease could expire elsewhere.
          if (leader && opts.clock.now() >= heldUntil - every) become(false);
        },
      )
      .finally(() => {
        renewing = false;
      });
  };

  return {
    start() {
      stopped = false;
      tick();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) opts.clock.clearTimeout(timer);
      if (leader) {
        become(false);
        try {
          await opts.store.release(opts.name, opts.holder);
        } catch (err) {
          log.warn({ err }, 'lease release failed; it expires on its own');
        }
      }
      await transition;
    },
    isLeader: () => leader,
    holder: () => lastHolder,
  };
}
