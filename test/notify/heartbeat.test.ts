import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createHeartbeat } from '../../src/notify/heartbeat.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { closedPort, startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

// The dead-man's switch against a real receiver on loopback. The interval runs on a manual clock (the
// test decides when the next ping is due); the request deadline is real time, as in production.

const INTERVAL = 60_000;

/** A receiver that records every ping and answers as `answer` says at the time it arrives. */
async function receiver() {
  const pings: Array<{ method: string; url: string; userAgent: string | undefined; closed: boolean }> = [];
  const state = { answer: 200 as number | 'hang' };
  const server = await startHttp((req: IncomingMessage, res: ServerResponse) => {
    const ping = { method: req.method ?? '', url: req.url ?? '', userAgent: req.headers['user-agent'], closed: false };
    pings.push(ping);
    res.on('close', () => {
      ping.closed = true;
    });
    if (state.answer === 'hang') return;
    res.statusCode = state.answer;
    res.end(state.answer === 200 ? 'ok' : 'down');
  });
  servers.push(server);
  return { server, pings, state };
}

const servers: TestServer[] = [];
const stops: Array<() => void> = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function heartbeat(url: string, opts: { intervalMs?: number; healthy?: () => boolean } = {}) {
  const clock = new ManualClock();
  const logs = memoryLogger();
  const results: boolean[] = [];
  const hb = createHeartbeat({
    url,
    intervalMs: opts.intervalMs ?? INTERVAL,
    clock,
    logger: logs.logger,
    healthy: opts.healthy ?? (() => true),
    onResult: (ok) => results.push(ok),
  });
  stops.push(() => hb.stop());
  /** The next ping is scheduled once the current one has ended. */
  const scheduled = () => waitFor('the next ping to be scheduled', () => clock.pending === 1);
  return { hb, clock, logs, results, scheduled };
}

describe('heartbeat (dead-man switch)', () => {
  it('pings at once on start, then once per interval, a GET to the URL with its user agent', async () => {
    const { server, pings } = await receiver();
    const { hb, clock, results, scheduled } = heartbeat(`${server.url}/ping/abc?source=vigil`);

    hb.start();
    await waitFor('the first ping', () => results.length === 1);
    expect(pings).toEqual([{ method: 'GET', url: '/ping/abc?source=vigil', userAgent: 'vigil heartbeat', closed: true }]);
    expect(results).toEqual([true]);

    await scheduled();
    // Not a millisecond early: the timer for the next ping has not fired.
    const fired = clock.fired;
    await clock.advance(INTERVAL - 1);
    expect(clock.fired).toBe(fired);
    await clock.advance(1);
    await waitFor('the second ping', () => results.length === 2);

    await scheduled();
    await clock.advance(INTERVAL);
    await waitFor('the third ping', () => results.length === 3);
    expect(pings).toHaveLength(3);
    expect(results).toEqual([true, true, true]);
  });

  it('withholds the ping while vigil is not healthy, and pings again once it is', async () => {
    const { server, pings } = await receiver();
    let healthy = false;
    const { hb, clock, logs, results } = heartbeat(server.url, { healthy: () => healthy });

    hb.start();
    // Withheld, not failed: the switch outside must simply stop hearing from vigil.
    await waitFor('the withheld ping to be logged', () => logs.lines.some((l) => l.msg === 'heartbeat withheld: vigil is not healthy'));
    expect(clock.pending).toBe(1);
    await clock.advance(INTERVAL);
    expect(logs.lines.filter((l) => l.msg === 'heartbeat withheld: vigil is not healthy')).toHaveLength(2);
    expect(pings).toEqual([]);
    expect(results).toEqual([]);

    healthy = true;
    await clock.advance(INTERVAL);
    await waitFor('the ping after recovery', () => results.length === 1);
    expect(pings).toHaveLength(1);
    expect(results).toEqual([true]);
  });

  it('treats a health check that throws as not healthy: the ping is withheld, nothing crashes, the loop goes on', async () => {
    const { server, pings } = await receiver();
    let broken = true;
    const { hb, clock, logs, results } = heartbeat(server.url, {
      healthy: () => {
        if (broken) throw new Error('database is locked');
        return true;
      },
    });

    hb.start();
    await waitFor('the withheld ping to be logged', () =>
      logs.lines.find((l) => l.msg === 'heartbeat withheld: the health check failed' && l.error === 'database is locked'),
    );
    expect(clock.pending).toBe(1);
    expect(pings).toEqual([]);
    expect(results).toEqual([]);

    broken = false;
    await clock.advance(INTERVAL);
    await waitFor('the ping once the health check answers', () => results.length === 1);
    expect(results).toEqual([true]);
  });

  it('counts an error status as a failed ping, logs the status, and still pings on the next interval', async () => {
    const { server, pings, state } = await receiver();
    state.answer = 503;
    const { hb, clock, logs, results, scheduled } = heartbeat(server.url);

    hb.start();
    await waitFor('the failed ping', () => results.length === 1);
    expect(results).toEqual([false]);
    expect(logs.lines.find((l) => l.msg === 'heartbeat answered with an error')).toMatchObject({ status: 503 });

    state.answer = 200;
    await scheduled();
    await clock.advance(INTERVAL);
    await waitFor('the next ping', () => results.length === 2);
    expect(results).toEqual([false, true]);
    expect(pings).toHaveLength(2);
  });

  it('counts a receiver that refuses connections as failed without throwing', async () => {
    const { hb, logs, results, scheduled } = heartbeat(`http://127.0.0.1:${await closedPort()}/ping`);

    hb.start();
    await waitFor('the failed ping', () => results.length === 1);
    expect(results).toEqual([false]);
    expect(logs.lines.find((l) => l.msg === 'heartbeat failed')?.error).toMatch(/ECONNREFUSED|connect/i);
    await scheduled();
  });

  it('gives up on a receiver that never answers after the interval, without blocking, and pings again', async () => {
    const { server, pings, state } = await receiver();
    state.answer = 'hang';
    // The request deadline is the interval (at most 10 s): a short interval keeps the test short.
    const intervalMs = 300;
    const { hb, clock, logs, results, scheduled } = heartbeat(server.url, { intervalMs });

    const began = performance.now();
    hb.start();
    // start() only sends: it returns before the receiver has even seen the request.
    expect(pings).toHaveLength(0);
    await waitFor('the ping to arrive', () => pings.length === 1);
    // The event loop stays free while the ping hangs: timers keep firing.
    const ticks = await new Promise<number>((resolve) => {
      let n = 0;
      const t = setInterval(() => {
        if (++n === 5) {
          clearInterval(t);
          resolve(n);
        }
      }, 10);
    });
    expect(ticks).toBe(5);

    await waitFor('the hanging ping to time out', () => results.length === 1, 5_000);
    expect(performance.now() - began).toBeGreaterThanOrEqual(intervalMs - 20);
    expect(results).toEqual([false]);
    expect(logs.lines.some((l) => l.msg === 'heartbeat failed')).toBe(true);
    await waitFor('the receiver to see the request abandoned', () => pings[0]?.closed);

    state.answer = 200;
    await scheduled();
    await clock.advance(intervalMs);
    await waitFor('the next ping', () => results.length === 2);
    expect(results).toEqual([false, true]);
  });

  it('stops on stop(): no ping is scheduled or sent afterwards', async () => {
    const { server, pings } = await receiver();
    const { hb, clock, results, scheduled } = heartbeat(server.url);

    hb.start();
    await waitFor('the first ping', () => results.length === 1);
    await scheduled();
    hb.stop();
    expect(clock.pending).toBe(0);
    await clock.advance(10 * INTERVAL);
    expect(pings).toHaveLength(1);
    expect(results).toEqual([true]);
  });

  it('stopped while a ping hangs: abandons it at once, reports nothing more, schedules nothing', async () => {
    const { server, pings, state } = await receiver();
    state.answer = 'hang';
    const { hb, clock, logs, results } = heartbeat(server.url);

    hb.start();
    await waitFor('the ping to arrive', () => pings.length === 1);
    hb.stop();
    // The request is dropped now, not at its 10 s deadline: shutdown leaves no socket behind.
    await waitFor('the receiver to see the request abandoned', () => pings[0]?.closed, 2_000);
    // Let the aborted request settle: a stopped heartbeat neither counts it nor logs it as a failure.
    await new Promise((r) => setImmediate(r));
    await clock.advance(10 * INTERVAL);
    expect(clock.pending).toBe(0);
    expect(results).toEqual([]);
    expect(logs.lines.some((l) => l.msg === 'heartbeat failed')).toBe(false);
    expect(pings).toHaveLength(1);
  });
});
