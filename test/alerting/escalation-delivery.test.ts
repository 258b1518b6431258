import { Value } from '@sinclair/typebox/value';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerting, type EscalationPolicy } from '../../src/alerting/index.js';
import { AlertSchema } from '../../src/config/schema.js';
import { type Channel, channelKindOf, createOutboxWorker } from '../../src/notify/index.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { type PagerDutyApi, startPagerDutyApi } from '../helpers/pagerduty-api.js';
import { type SlackApiServer, startSlackApi } from '../helpers/slack-api.js';
import { waitFor } from '../helpers/wait.js';

const MIN = 60_000;

describe('an escalation delivered to real peers', () => {
  let slack: SlackApiServer;
  let pd: PagerDutyApi;
  let smtp: SMTPServer;
  let smtpPort = 0;
  const mails: Array<{ to: string[] }> = [];

  beforeAll(async () => {
    slack = await startSlackApi({ token: 'xoxb-test-token-1234' });
    pd = await startPagerDutyApi();
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, cb) {
        stream.resume();
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address) });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    smtpPort = (smtp.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await slack.close();
    await pd.close();
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  it('pages step by step through Slack, PagerDuty and email, and an ack reaches everyone paged', async () => {
    const clock = new ManualClock();
    const logger = memoryLogger().logger;
    const store = createSqliteStore({ path: ':memory:', clock, logger });
    const channelConfig = {
      'slack-ops': { type: 'slack', token: 'xoxb-test-token-1234', channel: '#ops-alerts', apiUrl: slack.apiUrl },
      pagerduty: { type: 'pagerduty', routingKey: 'R0UT1NGKEY0000000000000000000000', url: pd.url },
      email: { type: 'email', smtp: `smtp://127.0.0.1:${smtpPort}`, from: 'vigil@example.com', to: ['eng@example.com'] },
    };
    const channels = new Map<string, Channel>();
    for (const [name, c] of Object.entries(channelConfig)) {
      const kind = channelKindOf(c.type as never);
      const { type: _t, ...fields } = c;
      channels.set(name, kind.create(name, Value.Default(kind.schema, fields) as never, { logger, clock }));
    }
    const people = { alice: { id: 'alice', name: 'Alice Ng', email: 'alice@example.com', slack: 'U0ALICE', pagerduty: true } };
    const worker = createOutboxWorker({
      store: store.alerts,
      channels,
      clock,
      logger,
      observer: { outcome: () => {}, latency: () => {} },
      baseUrl: 'http://vigil.test',
      maxAgeMs: 3_600_000,
      sendTimeoutMs: 5_000,
      minBackoffMs: 10,
      maxBackoffMs: 100,
      concurrency: 4,
      pollIntervalMs: 60_000,
      people: (id) => people[id as keyof typeof people],
    });
    const policy: EscalationPolicy = {
      steps: [
        { notify: ['slack-ops'], after: '0m' },
        { notify: ['oncall:primary'], via: ['pagerduty', 'email'], after: '5m' },
        { notify: ['person:alice'], via: ['slack-ops'], after: '15m' },
      ],
      repeat: 0,
      repeatAfter: '5m',
      fallback: [],
    };
    const def = {
      id: 'api',
      kind: 'http',
      schedule: { every: '1m' },
      timeout: '10s',
      retry: { count: 0, delay: '10s' },
      labels: {},
      alert: Value.Default(AlertSchema, { failures: 1, policy: 'default' }),
    } as unknown as ProbeDefinition;
    const alerting = createAlerting({
      store: store.alerts,
      clock,
      logger,
      probes: () => [def],
      flapping: { start: 0.5, stop: 0.25 },
      maintenance: [],
      sweepIntervalMs: 5_000,
      onQueued: () => worker.wake(),
      escalation: {
        policies: () => ({ default: policy }),
        targets: () => ({
          channels: { 'slack-ops': 'slack', pagerduty: 'pagerduty', email: 'email' },
          people,
          onCall: () => 'alice',
        }),
      },
    });
    worker.start();
    try {
      const run: RunRecord = {
        probeId: 'api',
        kind: 'http',
        startedAt: clock.now(),
        durationMs: 5,
        ok: false,
        code: 'CONNECT',
        message: 'refused',
        values: {},
        attempts: 1,
        trigger: 'schedule',
      };
      alerting.observe(run);
      await waitFor('the Slack page', () => slack.calls.some((c) => c.method === 'chat.postMessage'));
      expect(slack.calls[0]?.body.channel).toBe('#ops-alerts');
      expect(pd.events).toHaveLength(0);

      clock.advanceSync(5 * MIN);
      await alerting.sweep();
      await waitFor('PagerDuty and the email to alice', () => pd.events.length === 1 && mails.length === 1);
      expect(pd.events[0]).toMatchObject({ event_action: 'trigger', payload: { source: 'api' } });
      expect(mails[0]?.to).toEqual(['alice@example.com']);

      const id = (await store.alerts.unresolvedIncidents())[0]!.id;
      await alerting.acknowledge(id, 'alice');
      await waitFor(
        'the acknowledgements',
        () => pd.events.length === 2 && slack.calls.some((c) => c.method === 'chat.update') && mails.length === 2,
      );
      expect(pd.events[1]).toMatchObject({ event_action: 'acknowledge', dedup_key: pd.events[0]?.dedup_key });

      // Acknowledged: the 15-minute step never fires.
      clock.advanceSync(15 * MIN);
      await alerting.sweep();
      await new Promise((r) => setTimeout(r, 200));
      expect(slack.calls.filter((c) => c.body.channel === 'U0ALICE')).toHaveLength(0);
      expect((await store.alerts.notifications(id)).every((n) => n.state === 'delivered')).toBe(true);
    } finally {
      await worker.stop(1_000);
      for (const c of channels.values()) await c.close();
      await store.close();
    }
  });
});
