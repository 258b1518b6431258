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
  /**
   * Incidents with a page given up on (dead), each with when its newest such page was queued
   * (epoch ms): those queued in the UNDELIVERED_DAYS before the read that found them.
   */
  undelivered: ReadonlyMap<number, number>;
  /** Epoch ms of the read these figures come from; undefined before the first one answered. */
  readAt?: number;
  /** Why the last read failed, when it did (the figures are then the last good ones). */
  error?: string;
}

/** How far back pages given up on are looked for: the incident history on `/` reaches 30 days. */
export const UNDELIVERED_DAYS = 30;
const DAY = 86_400_000;

/**
 * Alerting's figures for /health, /metrics and `/`, read from the store in the background every few
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
  let figures: AlertFigures = {
    openBySeverity: {},
    outbox: { pending: 0, oldestPendingMs: 0, dead: 0 },
    held: [],
    onCall: {},
    undelivered: new Map(),
  };
  /** The dead count the undelivered incidents were read at (undefined: not read yet). */
  let deadSeen: number | undefined;

  /** A month of deliveries, read only when the dead count moved: a page is given up on rarely, and `/` is loaded often. */
  async function undelivered(now: number, dead: number): Promise<ReadonlyMap<number, number>> {
    if (dead === deadSeen) return figures.undelivered;
    const found = new Map<number, number>();
    for (const d of await store.deliveries(now - UNDELIVERED_DAYS * DAY, now + 1)) {
      if (d.state !== 'dead' || d.incidentId === null || d.action === 'test') continue;
      found.set(d.incidentId, Math.max(found.get(d.incidentId) ?? 0, d.createdAt));
    }
    return found;
  }
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
      const dead = await undelivered(now, outbox.dead);
      const openBySeverity: Record<string, number> = {};
      for (const i of open) openBySeverity[i.severity] = (openBySeverity[i.severity] ?? 0) + 1;
      figures = { openBySeverity, outbox, held, onCall, undelivered: dead, readAt: now };
      deadSeen = outbox.dead;
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
