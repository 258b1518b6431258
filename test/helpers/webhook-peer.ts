import type { Channel } from '../../src/notify/index.js';
import type { OutboxItem } from '../../src/store/index.js';
import { outboxOver } from './outbox.js';
import { startHttp, type TestServer } from './servers.js';

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
  const outbox = outboxOver({ c: channel });
  const id = await outbox.open('c', ['trigger', 'resolve'], { probeId: 'api-health', resolvedAfterMs: 4 * 60_000 });
  outbox.worker.start();
  try {
    await outbox.pass(opts.downMinutes * 60_000);
    opts.up();
    await outbox.pass(10 * 60_000);
  } finally {
    await outbox.worker.stop(1_000);
  }
  const rows = await outbox.store.alerts.notifications(id);
  await outbox.store.close();
  return rows;
}
