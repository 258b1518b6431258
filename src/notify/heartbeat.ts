import { request } from 'undici';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { messageOf } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface HeartbeatOptions {
  /** The dead-man's switch: a URL outside vigil that alerts when it stops hearing from it. */
  url: string;
  intervalMs: number;
  clock: Clock;
  logger: Logger;
  /** Whether vigil is fit to say it is alive: the scheduler ticking and the outbox not stuck. */
  healthy(): boolean;
  onResult(ok: boolean): void;
}

/**
 * Watches the watcher: pings the URL every interval, but only while vigil is healthy, so a stuck
 * scheduler or outbox silences the pings and the outside switch pages someone.
 */
export function createHeartbeat(opts: HeartbeatOptions): { start(): void; stop(): void } {
  const log = opts.logger.child({ module: 'heartbeat' });
  let timer: TimerHandle | undefined;
  let stopped = true;
  // Aborted by stop(): a ping hanging on its receiver is dropped at shutdown, not at its deadline.
  let stopping = new AbortController();
  const ping = async () => {
    let fit: boolean;
    try {
      fit = opts.healthy();
    } catch (err) {
      // A health check that throws (the store erroring) is not healthy, and must not end the loop.
      log.warn({ error: messageOf(err) }, 'heartbeat withheld: the health check failed');
      return;
    }
    if (!fit) {
      log.warn('heartbeat withheld: vigil is not healthy');
      return;
    }
    const { signal } = stopping;
    try {
      const res = await request(opts.url, {
        method: 'GET',
        signal: AbortSignal.any([signal, AbortSignal.timeout(Math.min(10_000, opts.intervalMs))]),
        headers: { 'user-agent': 'vigil heartbeat' },
      });
      await res.body.dump();
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      opts.onResult(ok);
      if (!ok) log.warn({ status: res.statusCode }, 'heartbeat answered with an error');
    } catch (err) {
      if (signal.aborted) return;
      opts.onResult(false);
      log.warn({ error: messageOf(err) }, 'heartbeat failed');
    }
  };
  const loop = () => {
    void ping().finally(() => {
      if (!stopped) timer = opts.clock.setTimeout(loop, opts.intervalMs);
    });
  };
  return {
    start() {
      stopped = false;
      stopping = new AbortController();
      loop();
    },
    stop() {
      stopped = true;
      stopping.abort();
      if (timer !== undefined) opts.clock.clearTimeout(timer);
    },
  };
}
