import { describe, expect, it } from 'vitest';
import { backoff, type Channel, createOutboxWorker, DeliveryError, type Notification } from '../../src/notify/index.js';
import { type AlertStore, createSqliteStore } from '../../src/store/index.js';
import { ManualClock, settle } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';

type Behaviour = (n: Notification) => Promise<{ ref?: Record<string, string> }>;

/** A channel that records what it was sent and answers as the test says. */
function recorder(behave: Behaviour = async () => ({})) {
  const sent: Notification[] = [];
  let current = behave;
  let inFlight = 0;
  let maxInFlight = 0;
  const channel: Channel = {
    async send(n) {
      sent.push(n);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await current(n);
      } finally {
        inFlight--;
      }
    },
    close: async () => {},
  };
  return {
    channel,
    sent,
    maxInFlight: () => maxInFlight,
    answer(b: Behaviour) {
      current = b;
    },
  };
}

function setup(
  channels: Record<string, Channel>,
  over: Partial<Parameters<typeof createOutboxWorker>[0]> = {},
  wrap: (alerts: AlertStore) => AlertStore = (a) => a,
) {
  const clock = new ManualClock();
  const store = createSqliteStore({ path: ':memory:', clock, logger: memoryLogger().logger });
  const outcomes: string[] = [];
  const latencies: number[] = [];
  const registry = new Map(Object.entries(channels));
  const worker = createOutboxWorker({
    store: wrap(store.alerts),
    channels: registry,
    clock,
    logger: memoryLogger().logger,
    observer: {
      outcome: (c, o) => outcomes.push(`${c}:${o}`),
      latency: (_c, s) => latencies.push(s),
      held: (c) => outcomes.push(`${c}:held`),
    },
    baseUrl: 'https://vigil.example.com',
    maxAgeMs: 24 * 3_600_000,
    sendTimeoutMs: 10_000,
    minBackoffMs: 1_000,
    maxBackoffMs: 300_000,
    concurrency: 4,
    pollIntervalMs: 1_000,
    random: () => 1,
    ...over,
  });
  let probes = 0;
  const incident = async (
    channelNames: string[],
    actions: Array<'trigger' | 'acknowledge' | 'resolve'> = ['trigger'],
    runbook?: string,
  ) => {
    const opened = await store.alerts.applyIncidentChange({
      open: {
        probeId: `api-${++probes}`,
        rule: 'failures',
        kind: 'http',
        severity: 'critical',
        state: 'open',
        summary: 'api: 503',
        labels: {},
        channels: channelNames,
        openedAt: clock.now(),
        flapping: false,
        notified: true,
      },
      event: { at: clock.now(), type: 'opened', actor: 'vigil' },
      notify: (i) =>
        actions.flatMap((action) =>
          channelNames.map((channel) => ({
            channel,
            action,
            dedupKey: `api/failures/${i.id}`,
            payload: { id: i.id, key: `api/failures/${i.id}`, probeId: 'api', ...(runbook ? { runbook } : {}) },
          })),
        ),
    });
    return opened.id;
  };
  return { clock, store, worker, outcomes, latencies, incident, registry };
}

describe('outbox worker', () => {
  it('delivers what is due, records the channel ref, and reports delivery latency', async () => {
    const slack = recorder(async () => ({ ref: { channel: 'C1', ts: '1700000000.0001' } }));
    const t = setup({ slack: slack.channel });
    const id = await t.incident(['slack']);
    t.clock.advanceSync(250);
    t.worker.start();
    await t.clock.advance(0);
    expect(slack.sent).toHaveLength(1);
    expect(slack.sent[0]).toMatchObject({
      action: 'trigger',
      dedupKey: `api/failures/${id}`,
      links: { incident: `https://vigil.example.com/api/v1/incidents/${id}` },
    });
    expect((await t.store.alerts.notifications(id))[0]).toMatchObject({
      state: 'delivered',
      attempts: 1,
      ref: { channel: 'C1', ts: '1700000000.0001' },
    });
    expect(t.outcomes).toEqual(['slack:delivered']);
    expect(t.latencies).toEqual([0.25]);
    await t.worker.stop(0);
  });

  it("links a runbook as given, and one of vigil's own (a path) at baseUrl", async () => {
    const slack = recorder();
    const t = setup({ slack: slack.channel });
    await t.incident(['slack'], ['trigger'], '/runbooks/README.md#when-vigil-health-fails');
    await t.incident(['slack'], ['trigger'], 'https://wiki.example.com/rb');
    t.worker.start();
    await t.clock.advance(0);
    expect(slack.sent.map((n) => n.links.runbook)).toEqual([
      'https://vigil.example.com/runbooks/README.md#when-vigil-health-fails',
      'https://wiki.example.com/rb',
    ]);
    await t.worker.stop(0);
  });

  it('keeps each incident in order per channel and hands later actions the first delivery’s ref', async () => {
    let release: () => void = () => {};
    const slack = recorder((n) =>
      n.action === 'trigger' ? new Promise((r) => (release = () => r({ ref: { channel: 'C1', ts: '42.0' } }))) : Promise.resolve({}),
    );
    const t = setup({ slack: slack.channel });
    const id = await t.incident(['slack'], ['trigger', 'acknowledge', 'resolve']);
    t.worker.start();
    await t.clock.advance(0);
    // The acknowledge waits behind the trigger still in flight.
    expect(slack.sent.map((n) => n.action)).toEqual(['trigger']);
    await t.clock.advance(5_000);
    expect(slack.sent.map((n) => n.action)).toEqual(['trigger']);
    release();
    await t.clock.advance(0);
    await settle();
    expect(slack.sent.map((n) => n.action)).toEqual(['trigger', 'acknowledge', 'resolve']);
    expect(slack.sent[1]?.ref).toEqual({ channel: 'C1', ts: '42.0' });
    expect((await t.store.alerts.notifications(id)).every((n) => n.state === 'delivered')).toBe(true);
    await t.worker.stop(0);
  });

  it('rides out a provider down for minutes: backs off, honours Retry-After, then delivers each page exactly once', async () => {
    const pd = recorder(async () => {
      throw new DeliveryError('503 Service Unavailable', { retryable: true });
    });
    const t = setup({ pd: pd.channel });
    const a = await t.incident(['pd']);
    t.worker.start();
    await t.clock.advance(0);
    // random() = 1: delays are exactly 1 s, 2 s, 4 s, … capped at 300 s.
    expect((await t.store.alerts.notifications(a))[0]).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: '503 Service Unavailable',
    });
    expect((await t.store.alerts.notifications(a))[0]?.nextAttemptAt).toBe(t.clock.now() + 1_000);
    pd.answer(async () => {
      throw new DeliveryError('rate limited', { retryable: true, retryAfterMs: 30_000 });
    });
    await t.clock.advance(1_000);
    expect((await t.store.alerts.notifications(a))[0]?.nextAttemptAt).toBe(t.clock.now() + 30_000);
    pd.answer(async () => {
      throw new DeliveryError('503 Service Unavailable', { retryable: true });
    });
    await t.clock.advance(4 * 60_000);
    const attemptsWhileDown = pd.sent.length;
    expect(attemptsWhileDown).toBeGreaterThanOrEqual(5);
    pd.answer(async () => ({ ref: { dedup_key: 'x' } }));
    await t.clock.advance(10 * 60_000);
    expect((await t.store.alerts.notifications(a))[0]).toMatchObject({ state: 'delivered' });
    expect(pd.sent).toHaveLength(attemptsWhileDown + 1);
    expect(t.outcomes.filter((o) => o === 'pd:delivered')).toHaveLength(1);
    await t.worker.stop(0);
  });

  it('gives up at once on a permanent error, and on a retryable one past the maximum age', async () => {
    const slack = recorder(async () => {
      throw new DeliveryError('Slack said channel_not_found', { retryable: false });
    });
    const hook = recorder(async () => {
      throw new DeliveryError('connection refused', { retryable: true });
    });
    const t = setup({ slack: slack.channel, hook: hook.channel }, { maxAgeMs: 60_000 });
    const id = await t.incident(['slack', 'hook']);
    t.worker.start();
    await t.clock.advance(0);
    expect((await t.store.alerts.notifications(id)).find((n) => n.channel === 'slack')).toMatchObject({
      state: 'dead',
      lastError: 'Slack said channel_not_found',
    });
    await t.clock.advance(2 * 60_000);
    expect((await t.store.alerts.notifications(id)).find((n) => n.channel === 'hook')).toMatchObject({ state: 'dead' });
    expect(t.outcomes).toContain('slack:dead');
    expect(t.outcomes).toContain('hook:dead');
    expect(await t.store.alerts.outboxStats(t.clock.now())).toEqual({ pending: 0, oldestPendingMs: 0, dead: 2 });
    await t.worker.stop(0);
  });

  it('ends a send that hangs at its deadline and retries it', async () => {
    const hang = recorder((n) => new Promise(() => void n));
    const t = setup({ hang: hang.channel }, { sendTimeoutMs: 2_000 });
    const id = await t.incident(['hang']);
    t.worker.start();
    await t.clock.advance(0);
    expect(t.worker.inFlight()).toBe(1);
    // The channel ignores its signal; the worker still ends the send shortly after the deadline.
    await t.clock.advance(2_250);
    await settle();
    expect(t.worker.inFlight()).toBe(0);
    expect((await t.store.alerts.notifications(id))[0]).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'timed out after 2000 ms',
    });
    await t.worker.stop(0);
  });

  it('holds each channel to its concurrency, and holds (never dead-letters) pages for a channel not configured', async () => {
    const gates: Array<() => void> = [];
    const slow = recorder(() => new Promise((r) => gates.push(() => r({}))));
    const t = setup({ slow: slow.channel }, { concurrency: 2 });
    for (let i = 0; i < 5; i++) await t.incident(['slow']);
    const gone = await t.incident(['removed']);
    t.worker.start();
    await t.clock.advance(0);
    expect(slow.sent).toHaveLength(2);
    while (gates.length > 0) {
      gates.shift()?.();
      await settle();
      await t.clock.advance(0);
    }
    expect(slow.sent).toHaveLength(5);
    expect(slow.maxInFlight()).toBe(2);
    expect((await t.store.alerts.notifications(gone))[0]).toMatchObject({
      state: 'pending',
      attempts: 0,
      heldAt: t.clock.now(),
      lastError: 'channel removed is not configured',
    });
    expect(t.outcomes.filter((o) => o.endsWith(':dead'))).toEqual([]);
    // Told once, after the hold is written: /health's figures are re-read then, not at the next tick.
    expect(t.outcomes.filter((o) => o.endsWith(':held'))).toEqual(['removed:held']);
    await t.worker.stop(0);
  });

  it('sends held pages once their channel is back, past their maximum age, and keeps other channels flowing meanwhile', async () => {
    const late = recorder();
    const other = recorder();
    const t = setup({ other: other.channel }, { maxAgeMs: 60_000, pollIntervalMs: 600_000 });
    // More held pages than one scan reads: they must not crowd out the channel that works.
    const held: number[] = [];
    for (let i = 0; i < 210; i++) held.push(await t.incident(['late']));
    t.worker.start();
    await t.clock.advance(0);
    const fine = await t.incident(['other']);
    t.worker.wake();
    await t.clock.advance(0);
    expect(other.sent.map((n) => n.incident.id)).toEqual([fine]);
    expect(await t.store.alerts.held()).toEqual([{ channel: 'late', count: 210, since: t.clock.now() }]);

    // Held for a day, 1,440 times its maximum age: still held, never given up.
    await t.clock.advance(24 * 3_600_000);
    expect(await t.store.alerts.held()).toMatchObject([{ channel: 'late', count: 210 }]);
    expect(t.outcomes.filter((o) => o.endsWith(':dead'))).toEqual([]);

    // The channel is configured again; the first attempt fails (retryable): a retry, not a dead letter.
    let failFirst = true;
    late.answer(async () => {
      if (failFirst) {
        failFirst = false;
        throw new DeliveryError('503 from provider', { retryable: true });
      }
      return {};
    });
    t.registry.set('late', late.channel);
    t.worker.channelsChanged();
    for (let i = 0; i < 20 && late.sent.length < 211; i++) await t.clock.advance(2_000);
    expect(await t.store.alerts.held()).toEqual([]);
    expect(t.outcomes.filter((o) => o.endsWith(':dead'))).toEqual([]);
    expect(t.outcomes.filter((o) => o === 'late:delivered')).toHaveLength(210);
    // Each page delivered once (one retried).
    expect(new Set(late.sent.map((n) => n.incident.id)).size).toBe(210);
    expect(late.sent).toHaveLength(211);
    for (const id of held) expect((await t.store.alerts.notifications(id))[0]).toMatchObject({ state: 'delivered' });
    await t.worker.stop(0);
  });

  it('does not send again a page whose send finished while a scan was reading the due rows', async () => {
    let release: () => void = () => {};
    const slow = recorder(() => new Promise((r) => (release = () => r({}))));
    // A read that takes its rows at once and answers later, as a database over a network does.
    let gate: Promise<void> | undefined;
    const t = setup({ slow: slow.channel }, {}, (alerts) => ({
      ...alerts,
      due: async (...args: Parameters<AlertStore['due']>) => {
        const rows = await alerts.due(...args);
        if (gate) await gate;
        return rows;
      },
    }));
    const id = await t.incident(['slow']);
    t.worker.start();
    await t.clock.advance(0);
    expect(slow.sent).toHaveLength(1);
    let open: () => void = () => {};
    gate = new Promise((r) => (open = r));
    // A scan reads the row while it is still pending and in flight …
    t.worker.wake();
    await t.clock.advance(0);
    // … the send finishes and is recorded before that read answers.
    release();
    await waitFor('the delivery recorded', async () => (await t.store.alerts.notifications(id))[0]?.state === 'delivered');
    open();
    gate = undefined;
    await t.clock.advance(0);
    await t.clock.advance(2_000);
    expect(slow.sent).toHaveLength(1);
    await t.worker.stop(0);
  });

  it('settles a channel: resolves once the sends in flight through that object finish', async () => {
    const gates: Array<() => void> = [];
    const slow = recorder(() => new Promise((r) => gates.push(() => r({}))));
    const t = setup({ slow: slow.channel });
    await t.incident(['slow']);
    t.worker.start();
    await t.clock.advance(0);
    let settled = false;
    const done = t.worker.settled(slow.channel).then(() => {
      settled = true;
    });
    await settle();
    expect(settled).toBe(false);
    gates.shift()?.();
    await done;
    expect(settled).toBe(true);
    await t.worker.stop(0);
  });

  it('backs off exponentially with jitter, capped', async () => {
    expect(backoff(1, 1_000, 300_000, () => 0)).toBe(500);
    expect(backoff(1, 1_000, 300_000, () => 1)).toBe(1_000);
    expect(backoff(4, 1_000, 300_000, () => 1)).toBe(8_000);
    expect(backoff(20, 1_000, 300_000, () => 1)).toBe(300_000);
  });
});
