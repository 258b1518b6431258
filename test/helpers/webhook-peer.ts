import { type Channel, createOutboxWorker } from '../../src/notify/index.js';
import { createSqliteStore, type OutboxItem } from '../../src/store/index.js';
import { ManualClock } from './clock.js';
import { memoryLogger } from './context.js';
import { startHttp, type TestServer } from './servers.js';
import { waitFor } from './wait.js';

/** One request a webhook provider stand-in received. */
export interface Received {
  path: string;
  contentType: string;
  raw: string;
  body: unknown;
}

/** How the stand-in answers a request. */
export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** A local server answering like a webhook provider: `answer` decides each reply, every request is kept. */
export interface WebhookPeer extends TestServer {
  received: Received[];
  answer: (r: Received) => Answer;
}

export async function startWebhookPeer(answer: (r: Received) => Answer): Promise<WebhookPeer> {
  const received: Received[] = [];
  const peer = { received, answer } as WebhookPeer;
  const server = await startHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const r: Received = { path: req.url ?? '', contentType: String(req.headers['content-type'] ?? ''), raw, body };
      received.push(r);
      const a = peer.answer(r);
      res.writeHead(a.status, { 'content-type': 'text/plain; charset=utf-8', ...a.headers });
      res.end(a.body ?? '');
    });
  });
  return Object.assign(
    peer,
    { url: server.url, port: server.port, close: () => server.close() },
    {
      get connections() {
        return server.connections;
      },
    },
  );
}

/**
 * One incident's trigger and resolve queued for channel `c` and driven through the real outbox worker
 * on a ManualClock: `down` minutes with the provider failing (the test's `peer.answer` says how),
 * then `up()` and ten minutes more. Returns the outbox rows at the end.
 */
export async function throughOutage(channel: Channel, opts: { downMinutes: number; up: () => void }): Promise<OutboxItem[]> {
  const clock = new ManualClock();
  const logger = memoryLogger().logger;
  const store = createSqliteStore({ path: ':memory:', clock, logger });
  const worker = createOutboxWorker({
    store: store.alerts,
    channels: new Map([['c', channel]]),
    clock,
    logger,
    observer: { outcome: () => {}, latency: () => {} },
    baseUrl: 'https://vigil.example.com',
    maxAgeMs: 24 * 3_600_000,
    sendTimeoutMs: 5_000,
    minBackoffMs: 1_000,
    maxBackoffMs: 60_000,
    concurrency: 1,
    pollIntervalMs: 1_000,
    random: () => 1,
  });
  const opened = await store.alerts.applyIncidentChange({
    open: {
      probeId: 'api-health',
      rule: 'failures',
      kind: 'http',
      severity: 'critical',
      state: 'open',
      summary: 'api-health: 503',
      labels: {},
      channels: ['c'],
      openedAt: clock.now(),
      flapping: false,
      notified: true,
    },
    event: { at: clock.now(), type: 'opened', actor: 'vigil' },
    notify: (i) =>
      (['trigger', 'resolve'] as const).map((action) => ({
        channel: 'c',
        action,
        dedupKey: `api-health/failures/${i.id}`,
        // The incident as channels see it, as the alerting engine queues it.
        payload: {
          id: i.id,
          key: `api-health/failures/${i.id}`,
          probeId: 'api-health',
          kind: 'http',
          rule: 'failures',
          severity: 'critical',
          state: action === 'resolve' ? 'resolved' : 'open',
          openedAt: i.openedAt,
          ...(action === 'resolve' ? { resolvedAt: i.openedAt + 4 * 60_000 } : {}),
          summary: 'api-health: 503 Service Unavailable',
          labels: {},
          flapping: false,
        },
      })),
  });
  // Simulated time passes in steps; between them, real time passes until the send in flight has ended.
  const pass = async (ms: number) => {
    const end = clock.now() + ms;
    while (clock.now() < end) {
      await clock.advance(Math.min(500, end - clock.now()));
      await waitFor('the send in flight to end', () => worker.inFlight() === 0, 5_000);
    }
  };
  worker.start();
  try {
    await pass(opts.downMinutes * 60_000);
    opts.up();
    await pass(10 * 60_000);
  } finally {
    await worker.stop(1_000);
  }
  const rows = await store.alerts.notifications(opened.id);
  await store.close();
  return rows;
}
