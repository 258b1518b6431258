import { type Channel, createOutboxWorker } from '../../src/notify/index.js';
import { createSqliteStore } from '../../src/store/index.js';
import { ManualClock } from './clock.js';
import { memoryLogger } from './context.js';
import { waitFor } from './wait.js';

/**
 * The outbox worker over real channels, on a ManualClock and an in-memory store: `open` records an
 * incident change with its notifications, as the alerting engine does, and `pass` lets simulated
 * time go by in small steps, waiting in real time for every send in flight (real I/O) to end.
 */
export function outboxOver(channels: Record<string, Channel>) {
  const clock = new ManualClock();
  const logs = memoryLogger();
  const store = createSqliteStore({ path: ':memory:', clock, logger: logs.logger });
  const outcomes: string[] = [];
  const worker = createOutboxWorker({
    store: store.alerts,
    channels: new Map(Object.entries(channels)),
    clock,
    logger: logs.logger,
    observer: { outcome: (c, o) => outcomes.push(`${c}:${o}`), latency: () => {} },
    baseUrl: 'https://vigil.example.com',
    maxAgeMs: 24 * 3_600_000,
    sendTimeoutMs: 5_000,
    minBackoffMs: 1_000,
    maxBackoffMs: 60_000,
    concurrency: 2,
    pollIntervalMs: 1_000,
    random: () => 1,
  });
  /** Opens an incident of probe `probeId` (resolved `resolvedAfterMs` later, in the resolve's payload) and queues `actions` for `channel`. */
  const open = async (
    channel: string,
    actions: Array<'trigger' | 'resolve'>,
    { probeId = 'api', resolvedAfterMs = 0 }: { probeId?: string; resolvedAfterMs?: number } = {},
  ) => {
    const summary = `${probeId}: 503 Service Unavailable`;
    const opened = await store.alerts.applyIncidentChange({
      open: {
        probeId,
        rule: 'failures',
        kind: 'http',
        severity: 'critical',
        state: 'open',
        summary,
        labels: {},
        channels: [channel],
        openedAt: clock.now(),
        flapping: false,
        notified: true,
      },
      event: { at: clock.now(), type: 'opened', actor: 'vigil' },
      notify: (i) =>
        actions.map((action) => ({
          channel,
          action,
          dedupKey: `${probeId}/failures/${i.id}`,
          // The incident as channels render it (the engine stores the full view).
          payload: {
            id: i.id,
            key: `${probeId}/failures/${i.id}`,
            probeId,
            kind: 'http',
            rule: 'failures',
            severity: 'critical',
            state: action === 'resolve' ? 'resolved' : 'open',
            openedAt: i.openedAt,
            ...(action === 'resolve' ? { resolvedAt: i.openedAt + resolvedAfterMs } : {}),
            summary,
            labels: {},
            flapping: false,
          },
        })),
    });
    return opened.id;
  };
  const pass = async (span: number, step = 500) => {
    const end = clock.now() + span;
    while (clock.now() < end) {
      await clock.advance(Math.min(step, end - clock.now()));
      await waitFor('every send in flight to end', () => worker.inFlight() === 0, 10_000);
    }
  };
  return { clock, store, worker, outcomes, open, pass, logs };
}
