import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerting } from '../../src/alerting/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ms } from '../../src/lib/duration.js';
import { type Channel, createChannels, createOutboxWorker, type Notification } from '../../src/notify/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { type PagerDutyApi, startPagerDutyApi } from '../helpers/pagerduty-api.js';
import { closedPort } from '../helpers/servers.js';
import { type SlackApiServer, startSlackApi } from '../helpers/slack-api.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

// Slack, SMTP and PagerDuty all down for ten simulated minutes, each failing its own way (5xx, refused
// connections, 429 with Retry-After, SMTP 421), then healthy. The alerting engine opens and resolves
// incidents while they are down; the outbox worker (on a ManualClock, real channels over loopback) must
// deliver every notification exactly once per channel, in order per incident, counting every attempt,
// with none dead.

const SECOND = 1_000;
const MINUTE = 60_000;
const SLACK_TOKEN = 'xoxb-fault-0000-not-a-real-token';
const ROUTING_KEY = 'R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00';
const PROBES = ['api', 'web', 'db'];
const CHANNELS = ['slack-ops', 'email-eng', 'pd'];
const STEP = 250;

interface Mail {
  incident: string;
  action: string;
  subject: string;
}

/** A real smtp-server on a fixed port, started when the test says so (until then, connections are refused). */
function smtpPeer(port: number) {
  const mails: Mail[] = [];
  let refuseWith: number | undefined;
  let server: SMTPServer | undefined;
  return {
    mails,
    /** 421 to every connection from now on (a server in trouble), or undefined to accept. */
    set refuse(code: number | undefined) {
      refuseWith = code;
    },
    sessions: 0,
    async start() {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        closeTimeout: 100,
        onConnect: (_session, cb) => {
          this.sessions++;
          if (refuseWith === undefined) return cb();
          return cb(Object.assign(new Error('Service not available, try later'), { responseCode: refuseWith }));
        },
        onData(stream, _session, cb) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            const head =
              Buffer.concat(chunks)
                .toString('utf8')
                .split('\r\n\r\n')[0]
                ?.replace(/\r\n[ \t]+/g, ' ') ?? '';
            const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
            mails.push({ incident: header('X-Vigil-Incident'), action: header('X-Vigil-Action'), subject: header('Subject') });
            cb();
          });
        },
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(port, '127.0.0.1', () => resolve());
      });
      expect((server.server.address() as AddressInfo).port).toBe(port);
    },
    close: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}

describe('every channel down for minutes, then back', () => {
  let slack: SlackApiServer;
  let pd: PagerDutyApi;
  let smtp: ReturnType<typeof smtpPeer>;
  let smtpPort: number;
  let ws: ReturnType<typeof workspace>;

  beforeAll(async () => {
    slack = await startSlackApi({ token: SLACK_TOKEN });
    pd = await startPagerDutyApi();
    // A port nothing listens on: the SMTP server starts on it when the test says so.
    smtpPort = await closedPort();
    smtp = smtpPeer(smtpPort);
    ws = workspace({
      'config/default.yaml': [
        'alerting:',
        '  baseUrl: https://vigil.example.com',
        '  delivery: { maxAge: 24h, minBackoff: 1s, maxBackoff: 5m, timeout: 10s, pollInterval: 1s }',
        'channels:',
        `  slack-ops: { type: slack, token: "${SLACK_TOKEN}", channel: "#ops-alerts", apiUrl: "${slack.apiUrl}" }`,
        `  email-eng: { type: email, smtp: "smtp://127.0.0.1:${smtpPort}", from: vigil@example.com, to: [eng@example.com] }`,
        `  pd: { type: pagerduty, routingKey: ${ROUTING_KEY}, url: "${pd.url}" }`,
        '',
      ].join('\n'),
      'probes/p.yaml': PROBES.map(
        (id) =>
          `- id: ${id}\n  kind: http\n  url: http://127.0.0.1:9/${id}\n  schedule: { every: 1s }\n  alert: { failures: 1, recoveries: 1, severity: critical, channels: [${CHANNELS.join(', ')}] }\n`,
      ).join(''),
    });
  });
  afterAll(async () => {
    await slack?.close();
    await pd?.close();
    await smtp?.close();
    ws?.remove();
  });

  it('delivers every page exactly once per channel, in order, counting attempts, none dead', async ({ annotate }) => {
    const config = loadConfig({ cwd: ws.dir, env: {} });
    const clock = new ManualClock();
    const t0 = clock.now();
    const logs = memoryLogger();
    const store = createSqliteStore({ path: ':memory:', clock, logger: logs.logger });
    // Every send the worker makes, with its simulated time and outcome: what "attempts" must equal.
    const sends: Array<{ channel: string; id: number; action: string; key: string; at: number; ok: boolean }> = [];
    const real = createChannels(config.service.channels as Record<string, { type: string }>, { logger: logs.logger, clock });
    const channels = new Map<string, Channel>(
      [...real].map(([name, c]) => [
        name,
        {
          async send(n: Notification, ctx) {
            const record = { channel: name, id: n.id, action: n.action, key: n.dedupKey, at: clock.now(), ok: false };
            sends.push(record);
            const result = await c.send(n, ctx);
            record.ok = true;
            return result;
          },
          close: () => c.close(),
        },
      ]),
    );
    const outcomes: string[] = [];
    const delivery = config.service.alerting.delivery;
    const worker = createOutboxWorker({
      store: store.alerts,
      channels,
      clock,
      logger: logs.logger,
      observer: { outcome: (c, o) => outcomes.push(`${c}:${o}`), latency: () => {} },
      baseUrl: config.service.alerting.baseUrl,
      maxAgeMs: ms(delivery.maxAge),
      sendTimeoutMs: ms(delivery.timeout),
      minBackoffMs: ms(delivery.minBackoff),
      maxBackoffMs: ms(delivery.maxBackoff),
      concurrency: delivery.concurrency,
      pollIntervalMs: ms(delivery.pollInterval),
    });
    const alerting = createAlerting({
      store: store.alerts,
      clock,
      logger: logs.logger,
      probes: () => config.probes,
      flapping: config.service.alerting.flapping,
      maintenance: [],
      sweepIntervalMs: 5 * SECOND,
      onQueued: () => worker.wake(),
    });

    /** Simulated time passes in small steps; real time passes between them until every send in flight has ended. */
    const pass = async (span: number) => {
      const end = clock.now() + span;
      while (clock.now() < end) {
        await clock.advance(Math.min(STEP, end - clock.now()));
        await waitFor(
          'every send in flight to end',
          () => worker.inFlight() === 0,
          10_000,
          () => `still in flight: ${worker.inFlight()}`,
        );
      }
    };
    const run = (probeId: string, ok: boolean): RunRecord => ({
      probeId,
      kind: 'http',
      startedAt: clock.now(),
      durationMs: 12,
      ok,
      ...(ok ? {} : { code: 'HTTP_STATUS', message: '503 Service Unavailable (expected 200)' }),
      values: {},
      attempts: 1,
      trigger: 'schedule',
    });

    // Down, each its own way: Slack 500s, SMTP refuses connections (nothing listening), PagerDuty 500s.
    slack.mode = 'server-error';
    pd.mode = 'error';
    await alerting.seed(
      async () => [],
      () => undefined,
    );
    alerting.start();
    worker.start();
    for (const p of PROBES) alerting.observe(run(p, false));
    await pass(3 * MINUTE);
    // The incidents end while every trigger is still undelivered: the resolves queue behind them.
    for (const p of PROBES) alerting.observe(run(p, true));
    await pass(2 * MINUTE);
    expect(sends.filter((s) => s.ok)).toEqual([]);

    // Then down differently: Slack rate-limits (Retry-After 30 s), the SMTP server answers 421, PagerDuty throttles.
    slack.mode = 'rate-limited';
    slack.retryAfter = 30;
    smtp.refuse = 421;
    await smtp.start();
    pd.mode = 'throttle';
    pd.retryAfter = '45';
    await pass(5 * MINUTE);
    expect(sends.filter((s) => s.ok)).toEqual([]);
    const attemptsWhileDown = sends.length;

    // Healthy again.
    slack.mode = 'ok';
    smtp.refuse = undefined;
    pd.mode = 'accept';
    await pass(10 * MINUTE);
    alerting.stop();
    await worker.stop(1_000);

    const incidents = await store.alerts.incidents({ limit: 100 });
    expect(incidents.map((i) => [i.probeId, i.state]).sort()).toEqual(PROBES.map((p) => [p, 'resolved']).sort());
    expect(await store.alerts.outboxStats(clock.now())).toEqual({ pending: 0, oldestPendingMs: 0, dead: 0 });
    expect(outcomes.filter((o) => o.endsWith(':dead'))).toEqual([]);

    for (const i of incidents) {
      const key = `${i.probeId}/failures/${i.id}`;
      const notes = await store.alerts.notifications(i.id);
      // Three channels, a trigger and a resolve each, every one delivered.
      expect(notes.map((n) => `${n.channel}:${n.action}:${n.state}`).sort()).toEqual(
        CHANNELS.flatMap((c) => [`${c}:resolve:delivered`, `${c}:trigger:delivered`]).sort(),
      );
      for (const n of notes) {
        const mine = sends.filter((s) => s.id === n.id);
        // Attempts counted: one per send the worker made, and every one but the last failed.
        expect(n.attempts, `${n.channel} ${n.action} ${key}`).toBe(mine.length);
        expect(mine.filter((s) => s.ok)).toHaveLength(1);
        expect(mine.at(-1)?.ok).toBe(true);
        // A trigger rode out the whole outage; its resolve waited behind it (same lane) and went out once it was through.
        if (n.action === 'trigger') expect(n.attempts, `${n.channel} trigger ${key}`).toBeGreaterThan(3);
        // In order: nothing about the resolve was sent before the trigger was delivered.
        if (n.action === 'resolve') {
          const trigger = notes.find((t) => t.channel === n.channel && t.action === 'trigger');
          expect(mine[0]?.at).toBeGreaterThanOrEqual(trigger?.deliveredAt as number);
          expect(n.deliveredAt).toBeGreaterThanOrEqual(trigger?.deliveredAt as number);
        }
      }

      // Slack accepted one message and one update of it, the update after the post; every attempt it saw was counted.
      const calls = slack.calls.map((c, index) => ({ c, index })).filter(({ c }) => JSON.stringify(c.body).includes(key));
      const accepted = calls.filter(({ c }) => c.mode === 'ok');
      expect(accepted.map(({ c }) => c.method)).toEqual(['chat.postMessage', 'chat.update']);
      const slackNotes = notes.filter((n) => n.channel === 'slack-ops');
      expect(calls.filter(({ c }) => c.method === 'chat.postMessage')).toHaveLength(
        slackNotes.find((n) => n.action === 'trigger')?.attempts as number,
      );
      expect(calls.filter(({ c }) => c.method === 'chat.update')).toHaveLength(
        slackNotes.find((n) => n.action === 'resolve')?.attempts as number,
      );
      const ts = accepted[1]?.c.body.ts as string;
      expect(slack.messages.get(ts)?.text).toMatch(new RegExp(`^\\[RESOLVED\\] ${i.probeId} recovered after `));

      // PagerDuty: one trigger and one resolve accepted for the dedup key, the trigger first; every request counted.
      const events = pd.events.filter((e) => e.dedup_key === key).map((e) => e.event_action);
      expect(events).toEqual(['trigger', 'resolve']);
      const pdNotes = notes.filter((n) => n.channel === 'pd');
      expect(pd.requests.filter((r) => (r.body as { dedup_key?: string }).dedup_key === key)).toHaveLength(
        pdNotes.reduce((sum, n) => sum + n.attempts, 0),
      );

      // Email: one mail per notification, the trigger's first.
      expect(smtp.mails.filter((m) => m.incident === key).map((m) => m.action)).toEqual(['trigger', 'resolve']);
    }

    // Retry-After was honoured: after a 429 the next attempt of that notification came at least that much later.
    for (const [channel, wait] of [
      ['slack-ops', 30 * SECOND],
      ['pd', 45 * SECOND],
    ] as const) {
      const rateLimited = sends.filter((s) => s.channel === channel && !s.ok && s.at >= t0 + 5 * MINUTE && s.at < t0 + 10 * MINUTE);
      expect(rateLimited.length).toBeGreaterThan(0);
      for (const s of rateLimited) {
        const next = sends.find((x) => x.id === s.id && x.at > s.at);
        if (next) expect(next.at - s.at, `${channel} ${s.id}`).toBeGreaterThanOrEqual(wait);
      }
    }
    // Backoff, not a storm: ten minutes down is a handful of attempts per notification (1 s doubling to 5 min, or Retry-After).
    expect(attemptsWhileDown).toBeLessThanOrEqual(18 * 12);
    expect(smtp.sessions).toBeGreaterThan(0);
    await annotate(
      `${attemptsWhileDown} attempts while down for ${18} notifications; ${sends.length} in all; ` +
        `${slack.calls.length} Slack calls, ${pd.requests.length} PagerDuty requests, ${smtp.sessions} SMTP sessions`,
    );
    await Promise.allSettled([...channels.values()].map((c) => c.close()));
    await store.close();
  });
});
