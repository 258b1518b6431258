import type { Clock, TimerHandle } from '../lib/clock.js';
import { messageOf } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { noRedaction, type Redactor } from '../lib/redactor.js';
import type { AlertStore, OutboxItem } from '../store/index.js';
import { type Channel, DeliveryError, type IncidentView, type Notification, type Recipient } from './types.js';

/** What the worker reports, for metrics. */
export interface DeliveryObserver {
  /** `delivered`, `retry`, `dead` (gave up: permanent error or too old). */
  outcome(channel: string, outcome: 'delivered' | 'retry' | 'dead'): void;
  /** Seconds from the incident change to delivery. */
  latency(channel: string, seconds: number): void;
  /** A due notification was held: its channel is not configured (counted in the figures, not sent). */
  held?(channel: string): void;
}

export interface OutboxWorkerOptions {
  store: AlertStore;
  /**
   * Read at every scan: a reload changes the map in place. A notification whose channel is missing
   * is held (never dead-lettered) until `channelsChanged()` finds its channel again.
   */
  channels: ReadonlyMap<string, Channel>;
  clock: Clock;
  logger: Logger;
  observer: DeliveryObserver;
  /** Links in messages. */
  baseUrl: string;
  dashboardUrl?: string;
  maxAgeMs: number;
  sendTimeoutMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Sends in flight at once per channel. */
  concurrency: number;
  pollIntervalMs: number;
  /** Signs a one-click link for an incident action; links are left out when absent. */
  signLink?(incidentId: number, action: 'ack' | 'resolve'): string;
  /** A person's contact details, for notifications addressed to one (escalation). */
  people?(id: string): Recipient | undefined;
  /** [0, 1): jitter source; injectable so tests are exact. */
  random?: () => number;
  /**
   * Several instances on one database: claim what this worker takes (`by` = the instance) for
   * `forMs`, so another never sends it at the same time, and record outcomes only while the claim holds.
   */
  claim?: { by: string; forMs: number };
  /**
   * Every secret vigil's config holds (read at each send: a reload adds some). The last pass over
   * what leaves: a page's text, and a delivery error (a receiver may echo its URL's token) before it
   * is stored, shown or logged.
   */
  redactor?(): Redactor;
}

/** Delivers the outbox: the one place that retries, backs off and dead-letters. */
export interface OutboxWorker {
  start(): void;
  /** Look for due notifications now (something was just queued). */
  wake(): void;
  /** Stops taking new work and waits up to `graceMs` for sends in flight. */
  stop(graceMs: number): Promise<void>;
  /** Sends in flight now. */
  inFlight(): number;
  /** The channels map changed: held notifications of the channels now in it become due. */
  channelsChanged(): void;
  /** Resolves when the sends in flight through this channel object have finished (before closing it). */
  settled(channel: Channel): Promise<void>;
}

const BATCH = 200;
const CUT_OFF_GRACE_MS = 250;
const AFTER_SEND_ROWS = 8;

/** Exponential backoff with full jitter: uniform in [base/2, base], base = min · 2^(attempt-1), capped. */
export function backoff(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + random() * (base / 2));
}

export function createOutboxWorker(opts: OutboxWorkerOptions): OutboxWorker {
  const { store, clock } = opts;
  const log = opts.logger.child({ module: 'outbox' });
  const random = opts.random ?? Math.random;
  const claimant = opts.claim?.by;
  const busy = new Map<number, Promise<void>>();
  /** The channel object each send in flight went through: a replaced one is closed only after them. */
  const via = new Map<number, Channel>();
  const perChannel = new Map<string, number>();
  /** `incident/channel` pairs with a send in flight: their next notification waits, so order holds. */
  const lanes = new Set<string>();
  let timer: TimerHandle | undefined;
  let running = false;
  let scanning = false;
  let again = false;
  /**
   * Sends that finished while a scan's read of the due rows was under way: that read may predate
   * their outcome (a row it shows pending was just marked delivered, or due later), so the scan
   * must not start them again.
   */
  let finishedDuringRead: Set<number> | undefined;

  const laneOf = (i: OutboxItem) => `${i.incidentId ?? `test:${i.id}`}/${i.channel}/${i.recipient ?? ''}`;

  /**
   * Outcomes the store refused to record (read-only, disk full), by outbox id, written again at every
   * scan. Until then that notification is not sent again: a page delivered but not recorded would
   * otherwise go out once a poll for as long as the database refuses writes.
   */
  const unrecorded = new Map<number, () => Promise<void>>();

  async function record(id: number, write: () => Promise<void>) {
    try {
      await write();
      unrecorded.delete(id);
    } catch (err) {
      unrecorded.set(id, write);
      log.error(
        { err, outbox: id, unrecorded: unrecorded.size },
        'outbox write failed; the outcome is kept and written when the store takes it',
      );
    }
  }

  /** Writes the outcomes kept in memory, oldest first, until the store refuses one. */
  async function recordKept() {
    for (const [id, write] of unrecorded) {
      try {
        await write();
        unrecorded.delete(id);
      } catch {
        return;
      }
    }
  }

  const redactor = () => opts.redactor?.() ?? noRedaction;

  async function notificationOf(item: OutboxItem): Promise<Notification> {
    const incident = redactor().value(item.payload as IncidentView);
    const ref = item.incidentId === null ? undefined : await store.refFor(item.incidentId, item.channel, item.recipient);
    const found = item.recipient === undefined ? undefined : opts.people?.(item.recipient);
    // A name read from a file is a secret like any `${…}` value; the address is needed to deliver.
    const recipient = found === undefined ? undefined : { ...found, name: redactor().text(found.name) };
    return {
      id: item.id,
      action: item.action,
      dedupKey: item.dedupKey,
      incident,
      links: {
        incident: item.incidentId === null ? `${opts.baseUrl}/api/v1/channels` : `${opts.baseUrl}/api/v1/incidents/${item.incidentId}`,
        ...(opts.dashboardUrl ? { dashboard: opts.dashboardUrl } : {}),
        // A path is one of vigil's own runbooks (GET /runbooks/…), reached where vigil is.
        ...(incident.runbook
          ? { runbook: incident.runbook.startsWith('/') ? `${opts.baseUrl}${incident.runbook}` : incident.runbook }
          : {}),
        ...screenshotLink(opts.baseUrl, incident),
        // Only pages that ask for action carry links to act on; a resolve or a test does not.
        ...(opts.signLink && item.incidentId !== null && (item.action === 'trigger' || item.action === 'remind')
          ? { ack: opts.signLink(item.incidentId, 'ack'), resolve: opts.signLink(item.incidentId, 'resolve') }
          : {}),
      },
      ...(ref ? { ref } : {}),
      ...(recipient ? { recipient } : {}),
      createdAt: item.createdAt,
    };
  }

  /** The error with a message safe to store and show: a provider's answer may quote a secret back. */
  function redactedError(e: DeliveryError): DeliveryError {
    const message = redactor().text(e.message);
    if (message === e.message) return e;
    return new DeliveryError(message, {
      retryable: e.retryable,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    });
  }

  async function deliver(item: OutboxItem, channel: Channel) {
    const controller = new AbortController();
    // A channel that does not honour its signal still cannot hold its lane: shortly after the
    // deadline the send counts as timed out (and is retried; the provider deduplicates).
    let grace: TimerHandle | undefined;
    let deadline: TimerHandle | undefined;
    const cutOff = new Promise<never>((_, reject) => {
      deadline = clock.setTimeout(() => {
        controller.abort(new Error('send timed out'));
        grace = clock.setTimeout(() => reject(new Error('send timed out')), CUT_OFF_GRACE_MS);
      }, opts.sendTimeoutMs);
    });
    const started = clock.now();
    try {
      const notification = await notificationOf(item);
      const result = await Promise.race([channel.send(notification, { signal: controller.signal, clock, logger: log }), cutOff]);
      const now = clock.now();
      // Awaited before the send counts as finished: until the mark lands the item stays busy, so no scan sends it again.
      await record(item.id, () => store.markDelivered(item.id, now, result.ref, claimant));
      opts.observer.outcome(item.channel, 'delivered');
      opts.observer.latency(item.channel, (now - item.createdAt) / 1000);
      log.info(
        {
          outbox: item.id,
          channel: item.channel,
          action: item.action,
          incident: item.incidentId,
          attempts: item.attempts + 1,
          ms: now - started,
        },
        'notification delivered',
      );
    } catch (err) {
      const now = clock.now();
      const e = redactedError(
        err instanceof DeliveryError
          ? err
          : new DeliveryError(controller.signal.aborted ? `timed out after ${opts.sendTimeoutMs} ms` : messageOf(err), {
              retryable: true,
              cause: err,
            }),
      );
      // A hold is not the provider failing: the age counts from when its channel came back.
      const age = now - Math.max(item.createdAt, item.releasedAt ?? 0);
      if (!e.retryable || age >= opts.maxAgeMs) {
        await record(item.id, () => store.markDead(item.id, now, e.message, claimant));
        opts.observer.outcome(item.channel, 'dead');
        log.error(
          {
            outbox: item.id,
            channel: item.channel,
            action: item.action,
            incident: item.incidentId,
            attempts: item.attempts + 1,
            error: e.message,
          },
          e.retryable ? 'notification dead-lettered: still failing at its maximum age' : 'notification failed permanently',
        );
        return;
      }
      const wait = Math.max(e.retryAfterMs ?? 0, backoff(item.attempts + 1, opts.minBackoffMs, opts.maxBackoffMs, random));
      await record(item.id, () => store.markRetry(item.id, now, e.message, now + wait, claimant));
      wakeAt(now + wait);
      opts.observer.outcome(item.channel, 'retry');
      log.warn(
        { outbox: item.id, channel: item.channel, attempts: item.attempts + 1, retryInMs: wait, error: e.message },
        'notification failed; will retry',
      );
    } finally {
      if (deadline !== undefined) clock.clearTimeout(deadline);
      if (grace !== undefined) clock.clearTimeout(grace);
    }
  }

  /**
   * Starts due notifications. `limit` bounds the rows read: a finished send reads only a few (it
   * freed one slot), the periodic poll and a wake-up read a full batch.
   */
  async function scan(limit = BATCH): Promise<void> {
    if (!running) return;
    // One scan at a time: a slow database makes the next one wait, it does not stack them up.
    if (scanning) {
      again = true;
      return;
    }
    scanning = true;
    try {
      await recordKept();
      const now = clock.now();
      finishedDuringRead = new Set();
      const due = opts.claim ? await store.due(now, limit, opts.claim) : await store.due(now, limit);
      const stale = finishedDuringRead;
      finishedDuringRead = undefined;
      for (const item of due) {
        if (stale.has(item.id)) continue;
        if (!running) break;
        if (busy.has(item.id) || unrecorded.has(item.id) || lanes.has(laneOf(item))) continue;
        const channel = opts.channels.get(item.channel);
        if (!channel) {
          // A configuration gap (a reload removed the channel, or has not added it yet) is not a
          // reason to give up a page: it waits, counted and shown, until the channel exists again.
          await record(item.id, () => store.markHeld(item.id, now, `channel ${item.channel} is not configured`, claimant));
          log.error(
            { outbox: item.id, channel: item.channel, incident: item.incidentId },
            'notification held: its channel is not configured; it is sent when the channel is back',
          );
          opts.observer.held?.(item.channel);
          continue;
        }
        if ((perChannel.get(item.channel) ?? 0) >= opts.concurrency) continue;
        const lane = laneOf(item);
        lanes.add(lane);
        perChannel.set(item.channel, (perChannel.get(item.channel) ?? 0) + 1);
        via.set(item.id, channel);
        const p = deliver(item, channel).finally(() => {
          busy.delete(item.id);
          finishedDuringRead?.add(item.id);
          via.delete(item.id);
          lanes.delete(lane);
          perChannel.set(item.channel, (perChannel.get(item.channel) ?? 1) - 1);
          // A finished send frees one slot and may unblock the next notification of its lane: a short
          // read (busy lanes skipped) finds it without re-reading and parsing a whole batch per send.
          void scan(AFTER_SEND_ROWS + busy.size);
        });
        busy.set(item.id, p);
      }
    } catch (err) {
      log.error({ err }, 'outbox scan failed');
    } finally {
      scanning = false;
      finishedDuringRead = undefined;
    }
    if (again) {
      again = false;
      await scan();
    }
  }

  // A retry due before the next poll gets its own wake-up, so the backoff is not rounded up to the poll.
  let wakeTimer: TimerHandle | undefined;
  let wakeDue = Number.POSITIVE_INFINITY;
  function wakeAt(at: number) {
    if (!running || at >= wakeDue) return;
    if (wakeTimer !== undefined) clock.clearTimeout(wakeTimer);
    wakeDue = at;
    wakeTimer = clock.setTimeout(
      () => {
        wakeTimer = undefined;
        wakeDue = Number.POSITIVE_INFINITY;
        void scan();
      },
      Math.max(0, at - clock.now()),
    );
  }

  /** Held notifications of the channels configured now become due; the store is read again. */
  async function release() {
    try {
      const released = await store.releaseHeld([...opts.channels.keys()], clock.now());
      if (released > 0) log.info({ released }, 'held notifications released: their channels are configured again');
    } catch (err) {
      log.error({ err }, 'releasing held notifications failed; retried at the next start or reload');
    }
  }

  function loop() {
    void scan().finally(() => {
      if (running) timer = clock.setTimeout(loop, opts.pollIntervalMs);
    });
  }

  return {
    start() {
      if (running) return;
      running = true;
      // Held before a restart (or by another instance): sent now if their channel is configured here.
      void release().finally(loop);
    },
    wake() {
      // Deferred: the change that queued the notification commits first, and a burst of changes scans once.
      if (running) queueMicrotask(() => void scan());
    },
    async stop(graceMs) {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (wakeTimer !== undefined) clock.clearTimeout(wakeTimer);
      if (busy.size > 0) {
        let t: TimerHandle | undefined;
        await Promise.race([
          Promise.allSettled([...busy.values()]),
          new Promise((r) => (t = clock.setTimeout(() => r(undefined), graceMs))),
        ]);
        if (t !== undefined) clock.clearTimeout(t);
      }
      await recordKept();
      if (unrecorded.size > 0) {
        log.error({ outbox: [...unrecorded.keys()] }, 'stopping with outcomes the store refused; those notifications will be sent again');
      }
    },
    inFlight: () => busy.size,
    channelsChanged() {
      if (!running) return;
      void release().finally(() => scan());
    },
    async settled(channel) {
      await Promise.allSettled([...via].filter(([, c]) => c === channel).map(([id]) => busy.get(id)));
    },
  };
}

/** The failing run's screenshot, where vigil serves it (`GET /api/v1/probes/:id/artifacts/:key/:name`). */
function screenshotLink(baseUrl: string, incident: IncidentView): { screenshot?: string } {
  const a = incident.lastError?.artifacts;
  const name = a?.files.find((f) => f.endsWith('.png'));
  if (a === undefined || name === undefined) return {};
  return { screenshot: `${baseUrl}/api/v1/probes/${encodeURIComponent(incident.probeId)}/artifacts/${a.key}/${name}` };
}
