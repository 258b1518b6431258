import type { Clock, TimerHandle } from '../lib/clock.js';
import { messageOf } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { AlertStore, HeldPages } from '../store/index.js';

/** What /health and /metrics show of alerting, as last read from the store. */
export interface AlertFigures {
  /** Unresolved incidents by severity. */
  openBySeverity: Record<string, number>;
  outbox: { pending: number; oldestPendingMs: number; dead: number };
  held: HeldPages[];
  /** Who is on call, per schedule (undefined: nobody). */
  onCall: Record<string, string | undefined>;
  /** Epoch ms of the read these figures come from; undefined before the first one answered. */
  readAt?: number;
  /** Why the last read failed, when it did (the figures are then the last good ones). */
  error?: string;
}

/**
 * Alerting's figures for /health and /metrics, read from the store in the background every few
 * seconds and kept: neither a scrape nor a health check ever waits on the database. One read at a
 * time; a database that hangs leaves the last figures in place, aged, and says so.
 */
export interface AlertSnapshot {
  current(): AlertFigures;
  /**
   * Reads now (after an incident change, a delivery, a reload), at most one read at a time: asked
   * for during a read, one more read follows it. Resolves when the read under way is done.
   */
  refresh(): Promise<void>;
  /** Reads at once, then every interval; resolves once the first figures are in (or their read failed). */
  start(): Promise<void>;
  stop(): void;
}

export function createAlertSnapshot(opts: {
  store: AlertStore;
  clock: Clock;
  logger: Logger;
  intervalMs: number;
  /** Who is on call now, per schedule. */
  onCall?(): Promise<Record<string, string | undefined>>;
}): AlertSnapshot {
  const { store, clock } = opts;
  const log = opts.logger.child({ module: 'alert-figures' });
  let figures: AlertFigures = { openBySeverity: {}, outbox: { pending: 0, oldestPendingMs: 0, dead: 0 }, held: [], onCall: {} };
  let reading: Promise<void> | undefined;
  let timer: TimerHandle | undefined;
  let failing = false;

  async function read() {
    const now = clock.now();
    try {
      const [open, outbox, held, onCall] = await Promise.all([
        store.unresolvedIncidents(),
        store.outboxStats(now),
        store.held(),
        opts.onCall?.() ?? {},
      ]);
      const openBySeverity: Record<string, number> = {};
      for (const i of open) openBySeverity[i.severity] = (openBySeverity[i.severity] ?? 0) + 1;
      figures = { openBySeverity, outbox, held, onCall, readAt: now };
      failing = false;
    } catch (err) {
      figures = { ...figures, error: messageOf(err) };
      if (!failing) log.warn({ err }, 'reading alerting figures failed; the last ones are shown');
      failing = true;
    }
  }

  /** Asked for while a read was under way: that read may have missed the change, so one more follows. */
  let again = false;
  const refresh = (): Promise<void> => {
    if (reading) {
      again = true;
      return reading;
    }
    reading = read().finally(() => {
      reading = undefined;
      if (again) {
        again = false;
        void refresh();
      }
    });
    return reading;
  };

  return {
    current: () => figures,
    refresh,
    start() {
      const loop = () => {
        void refresh().finally(() => {
          if (timer !== undefined) timer = clock.setTimeout(loop, opts.intervalMs);
        });
      };
      const first = refresh();
      timer = clock.setTimeout(loop, opts.intervalMs);
      return first;
    },
    stop() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
