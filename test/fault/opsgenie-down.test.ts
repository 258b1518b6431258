import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerting } from '../../src/alerting/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ms } from '../../src/lib/duration.js';
import { own } from '../../src/lib/own.js';
import { type Channel, createChannels, createOutboxWorker, type Notification, recipientOf } from '../../src/notify/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { OPSGENIE_KEY, type OpsgenieApi, startOpsgenieApi } from '../helpers/opsgenie-api.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

// Opsgenie answers 503, then 429 with Retry-After, for eight simulated minutes while an incident opens
// and ends. Its escalation pages the channel's own responders and, through the same channel, a person
// known to vigil only by an Opsgenie username. Through the outbox (ManualClock, the real channel over
// loopback) each alert must be created exactly once and closed, the person's with them as responder.

const MINUTE = 60_000;
const STEP = 250;

describe('opsgenie down for minutes, then back, paging a person by username', () => {
  let og: OpsgenieApi;
  let ws: ReturnType<typeof workspace>;

  beforeAll(async () => {
    og = await startOpsgenieApi();
    ws = workspace({
      'config/default.yaml': [
        'alerting:',
        '  baseUrl: https://vigil.example.com',
        '  delivery: { maxAge: 24h, minBackoff: 1s, maxBackoff: 5m, timeout: 10s, pollInterval: 1s }',
        'channels:',
        `  og: { type: opsgenie, apiKey: "\${OG_KEY}", apiUrl: "${og.url}", responders: [{ type: team, name: ops }] }`,
        'people:',
        '  alice: { name: Alice Ng, opsgenie: alice@example.com }',
        'escalation:',
        '  default:',
        '    steps:',
        '      - { notify: [og, "person:alice"], after: 0m }',
        '',
      ].join('\n'),
      'probes/p.yaml':
        '- id: api\n  kind: http\n  url: http://127.0.0.1:9/api\n  schedule: { every: 1s }\n  alert: { failures: 1, recoveries: 1, severity: critical, policy: default }\n',
    });
  });
  afterAll(async () => {
    await og?.close();
    ws?.remove();
  });

  it('creates each alert once, closes it, and reaches the person as responder', async () => {
    const config = loadConfig({ cwd: ws.dir, env: { OG_KEY: OPSGENIE_KEY } });
    const cfg = config.service;
    const clock = new ManualClock();
    const logs = memoryLogger();
    const store = createSqliteStore({ path: ':memory:', clock, logger: logs.logger });
    const sends: Array<{ id: number; action: string; recipient?: string; at: number; ok: boolean }> = [];
    const real = createChannels(cfg.channels as Record<string, { type: string }>, { logger: logs.logger, clock });
    const og0 = real.get('og') as Channel;
    const channels = new Map<string, Channel>([
      [
        'og',
        {
          async send(n: Notification, ctx) {
            const record = {
              id: n.id,
              action: n.action,
              at: clock.now(),
              ok: false,
              ...(n.recipient ? { recipient: n.recipient.id } : {}),
            };
            sends.push(record);
            const result = await og0.send(n, ctx);
            record.ok = true;
            return result;
          },
          close: () => og0.close(),
        },
      ],
    ]);
    const delivery = cfg.alerting.delivery;
    const worker = createOutboxWorker({
      store: store.alerts,
      channels,
      clock,
      logger: logs.logger,
      observer: { outcome: () => {}, latency: () => {} },
      baseUrl: cfg.alerting.baseUrl,
      maxAgeMs: ms(delivery.maxAge),
      sendTimeoutMs: ms(delivery.timeout),
      minBackoffMs: ms(delivery.minBackoff),
      maxBackoffMs: ms(delivery.maxBackoff),
      concurrency: delivery.concurrency,
      pollIntervalMs: ms(delivery.pollInterval),
      people: (id) => {
        const p = own(cfg.people, id);
        return p && recipientOf(id, p);
      },
    });
    const alerting = createAlerting({
      store: store.alerts,
      clock,
      logger: logs.logger,
      probes: () => config.probes,
      flapping: cfg.alerting.flapping,
      maintenance: [],
      sweepIntervalMs: 5_000,
      onQueued: () => worker.wake(),
      escalation: {
        policies: () => cfg.escalation,
        targets: async () => ({
          channels: Object.fromEntries(Object.entries(cfg.channels).map(([n, c]) => [n, c.type])),
          people: cfg.people,
          onCall: () => undefined,
        }),
      },
    });
    const pass = async (span: number) => {
      const end = clock.now() + span;
      while (clock.now() < end) {
        await clock.advance(Math.min(STEP, end - clock.now()));
        await waitFor('every send in flight to end', () => worker.inFlight() === 0, 10_000);
      }
    };
    const run = (ok: boolean): RunRecord => ({
      probeId: 'api',
      kind: 'http',
      startedAt: clock.now(),
      durationMs: 12,
      ok,
      ...(ok ? {} : { code: 'HTTP_STATUS', message: '503 Service Unavailable (expected 200)' }),
      values: {},
      attempts: 1,
      trigger: 'schedule',
    });

    og.mode = 'error';
    await alerting.seed(
      async () => [],
      () => undefined,
    );
    alerting.start();
    worker.start();
    alerting.observe(run(false));
    await pass(3 * MINUTE);
    alerting.observe(run(true));
    og.mode = 'throttle';
    og.retryAfter = '40';
    const throttledFrom = clock.now();
    await pass(5 * MINUTE);
    const throttledUntil = clock.now();
    expect(sends.filter((s) => s.ok)).toEqual([]);
    const whileDown = sends.length;

    og.mode = 'accept';
    await pass(10 * MINUTE);
    alerting.stop();
    await worker.stop(1_000);

    const [incident] = await store.alerts.incidents({ limit: 10 });
    expect(incident?.state).toBe('resolved');
    const key = `api/failures/${incident?.id}`;
    const notes = await store.alerts.notifications(incident?.id as number);
    expect(notes.map((n) => `${n.action} ${n.channel}${n.recipient ? `→${n.recipient}` : ''} ${n.state}`).sort()).toEqual([
      'resolve og delivered',
      'resolve og→alice delivered',
      'trigger og delivered',
      'trigger og→alice delivered',
    ]);
    expect(await store.alerts.outboxStats(clock.now())).toEqual({ pending: 0, oldestPendingMs: 0, dead: 0 });
    for (const n of notes) expect(sends.filter((s) => s.id === n.id && s.ok)).toHaveLength(1);

    // Exactly once as Opsgenie saw it: one accepted create and one accepted close per alias.
    const accepted = og.requests.filter((r) => r.status === 202).map((r) => `${r.method} ${decodeURIComponent(r.path)}`);
    expect(accepted.sort()).toEqual(
      [`POST /v2/alerts`, `POST /v2/alerts`, `POST /v2/alerts/${key}/close`, `POST /v2/alerts/${key}:alice/close`].sort(),
    );
    expect(og.alerts.get(key)).toMatchObject({ status: 'closed', count: 1, create: { responders: [{ type: 'team', name: 'ops' }] } });
    // The person, known to vigil only by their Opsgenie username, is the responder of an alert of their own.
    expect(og.alerts.get(`${key}:alice`)).toMatchObject({
      status: 'closed',
      count: 1,
      create: { priority: 'P1', responders: [{ type: 'user', username: 'alice@example.com' }] },
    });
    // Retry-After honoured: after a 429 the next attempt of that notification came at least 40 s later.
    const throttled = sends.filter((s) => !s.ok && s.at >= throttledFrom && s.at < throttledUntil);
    expect(throttled.length).toBeGreaterThan(0);
    for (const t of throttled) {
      const next = sends.find((x) => x.id === t.id && x.at > t.at);
      if (next) expect(next.at - t.at).toBeGreaterThanOrEqual(40_000);
    }
    // Backoff and Retry-After, not a storm: four notifications over eight minutes down.
    expect(whileDown).toBeGreaterThan(4);
    expect(whileDown).toBeLessThanOrEqual(4 * 14);
    await Promise.allSettled([...channels.values()].map((c) => c.close()));
    await store.close();
  });
});
