import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerting, type EscalationPolicy } from '../../src/alerting/index.js';
import { AlertSchema } from '../../src/config/schema.js';
import { type Channel, channelKindOf, createOutboxWorker } from '../../src/notify/index.js';
import { checkSchedules } from '../../src/oncall/index.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { startTelegramApi, type TelegramApi } from '../helpers/telegram-api.js';
import { waitFor } from '../helpers/wait.js';

const MIN = 60_000;
const TOKEN = '7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const TEAM_CHAT = '-1001234567890';
const BOB_CHAT = '987654321';

describe('an escalation to a person reachable only on Telegram', () => {
  let api: TelegramApi;

  beforeAll(async () => {
    api = await startTelegramApi({ token: TOKEN, chats: [TEAM_CHAT, BOB_CHAT] });
  });
  afterAll(async () => {
    await api.close();
  });

  it('pages them in their own chat through the telegram channel, with no via:, and edits it there on resolve', async () => {
    const clock = new ManualClock();
    const logger = memoryLogger().logger;
    const store = createSqliteStore({ path: ':memory:', clock, logger });
    const kind = channelKindOf('telegram');
    const fields = Value.Default(kind.schema, { botToken: TOKEN, chatId: TEAM_CHAT, apiUrl: api.url });
    const channels = new Map<string, Channel>([['tg', kind.create('tg', fields as never, { logger, clock })]]);
    // Only a telegram id: no email, no slack, no pagerduty.
    const people = { bob: { id: 'bob', name: 'Bob Ode', telegram: BOB_CHAT, pagerduty: false } };
    // The config check accepts him as reachable.
    expect(checkSchedules({ bob: people.bob } as never, {})).toEqual([]);
    const worker = createOutboxWorker({
      store: store.alerts,
      channels,
      clock,
      logger,
      observer: { outcome: () => {}, latency: () => {} },
      baseUrl: 'https://vigil.example.com',
      maxAgeMs: 3_600_000,
      sendTimeoutMs: 5_000,
      minBackoffMs: 10,
      maxBackoffMs: 100,
      concurrency: 4,
      pollIntervalMs: 60_000,
      people: (id) => (Object.hasOwn(people, id) ? people[id as keyof typeof people] : undefined),
    });
    const policy: EscalationPolicy = {
      steps: [
        { notify: ['tg'], after: '0m' },
        { notify: ['person:bob'], after: '5m' },
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
      alert: Value.Default(AlertSchema, { failures: 1, recoveries: 1, policy: 'default' }),
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
        targets: () => ({ channels: { tg: 'telegram' }, people, onCall: () => undefined }),
      },
    });
    worker.start();
    try {
      const run = (ok: boolean): RunRecord => ({
        probeId: 'api',
        kind: 'http',
        startedAt: clock.now(),
        durationMs: 5,
        ok,
        ...(ok ? {} : { code: 'CONNECT', message: 'refused' }),
        values: {},
        attempts: 1,
        trigger: 'schedule',
      });
      alerting.observe(run(false));
      await waitFor('the team page', () => api.requests.some((r) => r.status === 200));
      expect(api.requests.map((r) => r.body.chat_id)).toEqual([TEAM_CHAT]);

      clock.advanceSync(5 * MIN);
      await alerting.sweep();
      await waitFor('the page in bob’s chat', () => api.requests.some((r) => r.body.chat_id === BOB_CHAT && r.status === 200));
      const bobs = [...api.messages.values()].find((m) => m.chat_id === BOB_CHAT);
      expect(bobs?.text).toMatch(/^<b>\[ERROR\] api: CONNECT: refused<\/b>/);

      clock.advanceSync(MIN);
      alerting.observe(run(true));
      await waitFor('both pages edited to resolved', () => [...api.messages.values()].every((m) => m.text.startsWith('<b>[RESOLVED]')));
      // Edited in place: one message per chat, no new one.
      expect([...api.messages.values()].map((m) => m.chat_id).sort()).toEqual([BOB_CHAT, TEAM_CHAT].sort());
      const id = (await store.alerts.incidents({ limit: 1 }))[0]?.id as number;
      let states: string[] = [];
      await waitFor('every page recorded as delivered', async () => {
        states = (await store.alerts.notifications(id)).map((n) => `${n.action}:${n.state}`);
        return states.every((st) => st.endsWith(':delivered'));
      });
      expect(states.sort()).toEqual(['resolve:delivered', 'resolve:delivered', 'trigger:delivered', 'trigger:delivered']);
    } finally {
      await worker.stop(1_000);
      for (const c of channels.values()) await c.close();
      await store.close();
    }
  });
});
