import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { queue } from '../../src/probers/queue.js';
import { probeContext } from '../helpers/context.js';
import { startRabbit, type TestRabbit } from '../helpers/rabbitmq-server.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type QueueDefinition = Parameters<typeof queue.probe>[0];
const schema = definitionSchema(queue.schema as unknown as TObject);

/** The loader's verdict on a definition: schema errors, else the prober's own check. */
function problemsOf(fields: Record<string, unknown>): string[] {
  const def = Value.Default(schema, { id: 'queue-test', kind: 'queue', schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (queue.check?.(def as never) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): QueueDefinition {
  const problems = problemsOf(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return Value.Default(schema, { id: 'queue-test', kind: 'queue', schedule: '* * * * *', ...structuredClone(fields) }) as QueueDefinition;
}

const unique = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;

describe('queue: definitions', () => {
  it('takes an amqp or redis URL matching the broker, and the bounds only where they mean something', () => {
    expect(problemsOf({ broker: 'amqp', url: 'amqp://mq:5672', queue: 'tasks', minConsumers: 2, maxDepth: 1000 })).toEqual([]);
    expect(problemsOf({ broker: 'redis', url: 'rediss://:pw@cache:6380/2', queue: 'jobs', type: 'stream', maxDepth: 10 })).toEqual([]);
    expect(problemsOf({ broker: 'kafka', url: 'amqp://mq' })[0]).toMatch(/^\/broker: /);
    expect(problemsOf({ broker: 'amqp', url: 'http://mq' })[0]).toMatch(/^\/url: /);
    expect(problemsOf({ broker: 'amqp', url: 'redis://mq' })).toEqual(['url: expected a amqp:// or amqps:// URL for broker amqp']);
    expect(problemsOf({ broker: 'redis', url: 'redis://c', queue: 'q', minConsumers: 1 })).toEqual([
      'minConsumers: Redis lists and streams do not report their consumers: amqp only',
    ]);
    expect(problemsOf({ broker: 'amqp', url: 'amqp://mq', maxDepth: 5 })).toEqual([
      'maxDepth: needs queue: the name of the queue to watch',
    ]);
    expect(problemsOf({ broker: 'amqp', url: 'amqp://mq', canary: false })[0]).toMatch(/^canary: .*nothing is checked/);
    expect(problemsOf({ broker: 'amqp', url: 'amqp://u:50%@mq' })[0]).toMatch(/^url: .*percent-encoded/);
    expect(problemsOf({ broker: 'amqp', url: 'amqp://mq', extra: 1 }).length).toBeGreaterThan(0);
  });

  it('names its values by what the definition checks, and is queue-delivery evidence named by its URL less the password', () => {
    const amqp = spec({ broker: 'amqp', url: 'amqp://vigil:s3cret-pass@mq.internal:5672/prod', queue: 'tasks', minConsumers: 1 });
    expect(queue.values(amqp)).toEqual(['round_trip_ms', 'depth', 'consumers']);
    expect(queue.values(spec({ broker: 'redis', url: 'redis://c', queue: 'q', canary: false }))).toEqual(['depth']);
    const window = { runs: 10, failures: 0, values: {}, last: { ok: true }, lastSuccess: null };
    expect(queue.report.evidence?.(amqp, window, {} as never)).toEqual({
      section: 'queueDelivery',
      item: { probeId: 'queue-test', target: 'amqp://mq.internal:5672/prod queue tasks', runs: 10, failures: 0, ok: true },
    });
  });

  it('ships examples that validate', () => {
    const defs = parse(readFileSync('probes/examples/queue.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(0);
    for (const raw of defs) expect(problemsOf(raw), String(raw.id)).toEqual([]);
  });
});

describe('queue: AMQP against rabbitmq-server', () => {
  let rabbit: TestRabbit;
  let mine: ChannelModel;

  beforeAll(async () => {
    rabbit = await startRabbit();
    process.stderr.write(`rabbitmq-server took ${rabbit.startMs} ms to take a login\n`);
    mine = await connect(rabbit.url);
  }, 40_000);
  afterAll(async () => {
    await mine?.close().catch(() => {});
    await rabbit?.stop();
  });

  it('round-trips a canary through a temporary queue, leaving no queue and no connection behind', async () => {
    const r = await queue.probe(spec({ broker: 'amqp', url: rabbit.url }), probeContext(5_000));
    expect(r).toMatchObject({ ok: true });
    expect(r.values.round_trip_ms).toBeGreaterThanOrEqual(0);
    expect(r.values.round_trip_ms).toBeLessThan(2_000);
    // The broker's own view: only the test's own connection is left (the canary queue, exclusive, went with vigil's).
    const connections = await rabbit.ctl('list_connections', 'client_properties');
    expect(connections).toContain('amqplib');
    expect(connections).not.toContain('vigil queue-test');
  });

  it('passes minConsumers when workers are attached and fails naming the queue when too few are', async () => {
    const name = unique('tasks');
    const ch = await mine.createChannel();
    await ch.assertQueue(name, { durable: false });
    await ch.consume(name, () => {});
    const ok = await queue.probe(spec({ broker: 'amqp', url: rabbit.url, queue: name, minConsumers: 1 }), probeContext(5_000));
    expect(ok).toMatchObject({ ok: true, values: { depth: 0, consumers: 1 } });
    const short = await queue.probe(spec({ broker: 'amqp', url: rabbit.url, queue: name, minConsumers: 2 }), probeContext(5_000));
    expect(short).toMatchObject({ ok: false, code: 'ASSERTION', message: `${name} has 1 consumer (expected at least 2)` });
    expect(short.values).toMatchObject({ consumers: 1, depth: 0 });
    await ch.close();
  });

  it('fails maxDepth when messages pile up with nobody consuming', async () => {
    const name = unique('backlog');
    const ch = await mine.createConfirmChannel();
    await ch.assertQueue(name, { durable: false });
    for (let i = 0; i < 1_204; i++) ch.sendToQueue(name, Buffer.from(`job ${i}`));
    await ch.waitForConfirms();
    const deep = await queue.probe(spec({ broker: 'amqp', url: rabbit.url, queue: name, maxDepth: 1_000 }), probeContext(5_000));
    expect(deep).toMatchObject({ ok: false, code: 'ASSERTION', message: `${name} has 1,204 messages ready (at most 1,000)` });
    expect(deep.values).toMatchObject({ depth: 1_204, consumers: 0 });
    const roomy = await queue.probe(spec({ broker: 'amqp', url: rabbit.url, queue: name, maxDepth: 2_000 }), probeContext(5_000));
    expect(roomy).toMatchObject({ ok: true, values: { depth: 1_204 } });
    await ch.deleteQueue(name);
    await ch.close();
  });

  it('fails naming a queue that does not exist, after the canary still ran', async () => {
    const r = await queue.probe(spec({ broker: 'amqp', url: rabbit.url, queue: 'no-such-queue', minConsumers: 1 }), probeContext(5_000));
    expect(r).toMatchObject({
      ok: false,
      code: 'QUEUE_MISSING',
      message: `queue no-such-queue does not exist on amqp://127.0.0.1:${rabbit.port}`,
    });
    expect(r.values.round_trip_ms).toBeGreaterThanOrEqual(0);
  });

  it('says the login was refused on a wrong password, never showing it', async () => {
    const url = `amqp://guest:Wr0ng-Passw0rd@127.0.0.1:${rabbit.port}`;
    const r = await queue.probe(spec({ broker: 'amqp', url }), probeContext(5_000));
    expect(r).toMatchObject({ ok: false, code: 'AUTH' });
    expect(r.message).toBe(`amqp://127.0.0.1:${rabbit.port} refused the login (ACCESS_REFUSED): check the user and password in the URL`);
  });

  it('says which virtual host was refused', async () => {
    const r = await queue.probe(spec({ broker: 'amqp', url: `${rabbit.url}/no-such-vhost` }), probeContext(5_000));
    expect(r).toMatchObject({ ok: false, code: 'AUTH' });
    expect(r.message).toBe(
      `amqp://127.0.0.1:${rabbit.port}/no-such-vhost refused to open virtual host no-such-vhost: does it exist, and may this user use it?`,
    );
  });

  it('ends as TIMEOUT when the broker sits on the canary (a memory alarm), saying why, with nothing left open', async () => {
    // A watermark of 0 raises the memory alarm: the broker blocks publishers and takes no message.
    await rabbit.ctl('set_vm_memory_high_watermark', '0');
    try {
      const started = Date.now();
      const r = await queue.probe(spec({ broker: 'amqp', url: rabbit.url }), probeContext(1_000));
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
      expect(r.message).toMatch(
        new RegExp(
          `^timed out after \\S+ waiting for amqp://127\\.0\\.0\\.1:${rabbit.port} to confirm the canary \\(the broker blocked publishing: low on memory\\)$`,
        ),
      );
    } finally {
      await rabbit.ctl('set_vm_memory_high_watermark', '0.4');
    }
    // Cut off mid-run at the deadline: the broker saw the connection go.
    await waitFor(
      "the broker to drop vigil's connection",
      async () => !(await rabbit.ctl('list_connections', 'client_properties')).includes('vigil queue-test'),
      5_000,
    );
  });

  it('fails CONNECT on a closed port', async () => {
    const port = await closedPort();
    const r = await queue.probe(spec({ broker: 'amqp', url: `amqp://127.0.0.1:${port}` }), probeContext(5_000));
    expect(r).toMatchObject({
      ok: false,
      code: 'CONNECT',
      message: `cannot connect to amqp://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    });
  });
});

/** A port that accepts and never says a word; counts the connections it still holds. */
async function silentPort(): Promise<{ port: number; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    // Reads and drops what the client says (its protocol header): unread bytes would hold back the close.
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('queue: a broker that never answers', () => {
  for (const broker of ['amqp', 'redis'] as const) {
    it(`${broker}: ends as TIMEOUT at the deadline with nothing left open`, async () => {
      const peer = await silentPort();
      try {
        const started = Date.now();
        const r = await queue.probe(spec({ broker, url: `${broker}://127.0.0.1:${peer.port}` }), probeContext(600));
        const took = Date.now() - started;
        expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
        expect(r.message).toMatch(new RegExp(`^timed out after \\S+ connecting to ${broker}://127\\.0\\.0\\.1:${peer.port}$`));
        expect(took).toBeGreaterThanOrEqual(550);
        expect(took).toBeLessThan(1_500);
        await waitFor('the probe to close its connection', () => peer.open() === 0, 2_000);
      } finally {
        await peer.close();
      }
    });
  }
});

describe('queue: Redis against redis-server', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis({ password: 'Redis-Pa55word' });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('round-trips a canary through a temporary list and deletes it', async () => {
    const r = await queue.probe(spec({ broker: 'redis', url: redis.url }), probeContext(5_000));
    expect(r).toMatchObject({ ok: true });
    expect(r.values.round_trip_ms).toBeGreaterThanOrEqual(0);
    expect(await redis.command('DBSIZE')).toBe(':0\r\n');
  });

  it('reads a list’s depth and fails maxDepth naming the list', async () => {
    const name = unique('jobs');
    await redis.command('LPUSH', name, 'a', 'b', 'c');
    const ok = await queue.probe(spec({ broker: 'redis', url: redis.url, queue: name, maxDepth: 3 }), probeContext(5_000));
    expect(ok).toMatchObject({ ok: true, values: { depth: 3 } });
    const deep = await queue.probe(spec({ broker: 'redis', url: redis.url, queue: name, maxDepth: 2 }), probeContext(5_000));
    expect(deep).toMatchObject({ ok: false, code: 'ASSERTION', message: `${name} has 3 messages ready (at most 2)`, values: { depth: 3 } });
    // An empty list does not exist in Redis: depth 0, not a failure.
    const empty = await queue.probe(spec({ broker: 'redis', url: redis.url, queue: unique('idle'), maxDepth: 0 }), probeContext(5_000));
    expect(empty).toMatchObject({ ok: true, values: { depth: 0 } });
  });

  it('reads a stream’s length with type: stream, and says so when the key holds something else', async () => {
    const name = unique('events');
    for (let i = 0; i < 4; i++) await redis.command('XADD', name, '*', 'n', String(i));
    const r = await queue.probe(spec({ broker: 'redis', url: redis.url, queue: name, type: 'stream', maxDepth: 3 }), probeContext(5_000));
    expect(r).toMatchObject({ ok: false, code: 'ASSERTION', message: `${name} has 4 entries (at most 3)`, values: { depth: 4 } });
    const wrong = await queue.probe(spec({ broker: 'redis', url: redis.url, queue: name, canary: false }), probeContext(5_000));
    expect(wrong).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(wrong.message).toBe(`${name} on redis://127.0.0.1:${redis.port} is a stream, not a list (set type: to what it holds)`);
  });

  it('says the password was refused, never showing it', async () => {
    const r = await queue.probe(spec({ broker: 'redis', url: `redis://:Wr0ng-Passw0rd@127.0.0.1:${redis.port}` }), probeContext(5_000));
    expect(r).toMatchObject({ ok: false, code: 'AUTH' });
    expect(r.message).toMatch(/^redis:\/\/127\.0\.0\.1:\d+ refused vigil \(WRONGPASS\)/);
    expect(r.message).not.toContain('Wr0ng');
  });
});
