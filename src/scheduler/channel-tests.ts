import type { Clock, TimerHandle } from '../lib/clock.js';
import { messageOf } from '../lib/errors.js';
import type { IncidentView } from '../notify/index.js';
import type { AlertStore, OutboxItem, RunRecord } from '../store/index.js';

/** A cron tick source, as the scheduler makes them (node-cron in production, a fake in tests). */
type CronDriver = (
  expression: string,
  handlers: { onTick(slot: number, next: number): void; onMissed(count: number): void },
) => { stop(): void };

export interface ChannelTestOptions {
  store: AlertStore;
  clock: Clock;
  cron: CronDriver;
  /** Channel name → its testSchedule, for the channels that have one. */
  schedules: Record<string, string>;
  /** How long a scheduled test page may take before it counts as not delivered. */
  waitMs: number;
  /** Wakes the outbox worker after a page is queued. */
  wake(): void;
  /** Where a scheduled test's outcome goes: the same flow as a probe run. */
  onResult(run: RunRecord): void;
}

/** Channel test pages: on demand (API) and on each channel's testSchedule. */
export interface ChannelTests {
  /** Queues a test page through a channel. */
  send(channel: string): Promise<OutboxItem>;
  /** The pseudo-probe ids scheduled tests record runs under (`channel:<name>`). */
  readonly probeIds: readonly string[];
  /** A reload: the schedules from the new channel config replace the old ones (restarted if running). */
  setSchedules(schedules: Record<string, string>): void;
  start(): void;
  stop(): void;
}

/** The incident a channel test page describes. */
function testPage(channel: string, now: number): Record<string, unknown> {
  const view: IncidentView = {
    id: 0,
    key: `test/${channel}/${now}`,
    probeId: '',
    kind: 'test',
    rule: '',
    severity: 'info',
    state: 'open',
    openedAt: now,
    summary: `test page through ${channel}`,
    labels: {},
    flapping: false,
  };
  return view;
}

/**
 * "Trigger an alert and verify it is sent": a channel with a testSchedule sends a test page then,
 * and its delivery becomes a run of `channel:<name>` — stored, measured and logged like a probe's.
 */
export function createChannelTests(opts: ChannelTestOptions): ChannelTests {
  const { store, clock } = opts;
  const sources: Array<{ stop(): void }> = [];
  const timers = new Set<TimerHandle>();
  let schedules = opts.schedules;
  let running = false;

  const send = async (channel: string): Promise<OutboxItem> => {
    const now = clock.now();
    const [item] = await store.enqueue(
      [{ incidentId: null, channel, action: 'test', dedupKey: `test/${channel}/${now}`, payload: testPage(channel, now) }],
      now,
    );
    if (item === undefined) throw new Error('the store queued no test page');
    opts.wake();
    return item;
  };

  const check = async (name: string, item: OutboxItem) => {
    const after = await store.outboxItem(item.id);
    const deliveredAt = after?.state === 'delivered' ? after.deliveredAt : undefined;
    const base = {
      probeId: `channel:${name}`,
      kind: 'channel-test',
      startedAt: item.createdAt,
      attempts: after?.attempts ?? 0,
      trigger: 'schedule' as const,
    };
    opts.onResult(
      deliveredAt !== undefined
        ? { ...base, ok: true, durationMs: deliveredAt - item.createdAt, values: { delivery_ms: deliveredAt - item.createdAt } }
        : {
            ...base,
            ok: false,
            durationMs: opts.waitMs,
            code: 'NOT_DELIVERED',
            message: `test page through ${name} not delivered within ${Math.round(opts.waitMs / 1000)}s: ${after?.lastError ?? after?.state ?? 'unknown'}`,
            values: {},
          },
    );
  };

  /** A test page the store could not queue or read back is a failed run, like a probe's error. */
  const failed = (name: string, at: number, err: unknown) =>
    opts.onResult({
      probeId: `channel:${name}`,
      kind: 'channel-test',
      startedAt: at,
      attempts: 0,
      trigger: 'schedule',
      ok: false,
      durationMs: 0,
      code: 'STORE_ERROR',
      message: `test page through ${name} not recorded: ${messageOf(err)}`,
      values: {},
    });

  const schedule = () => {
    for (const [name, expr] of Object.entries(schedules)) {
      const onTick = () => {
        void send(name).then(
          (item) => {
            const timer = clock.setTimeout(() => {
              timers.delete(timer);
              void check(name, item).catch((err: unknown) => failed(name, clock.now(), err));
            }, opts.waitMs);
            timers.add(timer);
          },
          (err: unknown) => failed(name, clock.now(), err),
        );
      };
      sources.push(opts.cron(expr, { onTick, onMissed: () => {} }));
    }
  };

  return {
    send,
    get probeIds() {
      return Object.keys(schedules).map((n) => `channel:${n}`);
    },
    setSchedules(next) {
      schedules = next;
      // Tests already sent still get their result; only the cron sources change.
      for (const s of sources.splice(0)) s.stop();
      if (running) schedule();
    },
    start() {
      running = true;
      schedule();
    },
    stop() {
      running = false;
      for (const s of sources.splice(0)) s.stop();
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
    },
  };
}
