import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The limiter's options: requests a minute per client address, and the paths it never counts. */
export interface RateLimitOptions {
  perMinute: number;
  /** Paths (without the query string) that are never limited: the monitoring of vigil itself. */
  exempt: ReadonlySet<string>;
  /** How long a refused request waits before its 429; 0 (the default) answers at once. */
  holdMs?: number;
  /** Refused requests held at once (10,000); past this they are answered at once. */
  maxHeld?: number;
  /** Addresses tracked at once; past this the table is swept of closed windows, then cleared (a bound, not a feature). */
  maxAddresses?: number;
}

const WINDOW_MS = 60_000;

/** A request's path without its query string. */
export const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/**
 * Whom a limit counts: the client address, an IPv6 one by its /64 (@fastify/rate-limit's default), so
 * a client cannot walk its own subnet to get a fresh allowance per address.
 */
export const clientOf = (req: FastifyRequest): string => normalizeIP(req.ip);

/**
 * The API-wide rate limit as the first onRequest hook: it runs before authentication, the router's
 * 404 and every handler, so wrong tokens, guessed paths and `/docs` all count, and a refused request
 * costs one map lookup. A fixed window per address; synchronous, so the flood never reaches a promise.
 */
export function createRateLimit(opts: RateLimitOptions) {
  const max = opts.maxAddresses ?? 100_000;
  const windows = new Map<string, { resetAt: number; count: number }>();
  const holdMs = opts.holdMs ?? 0;
  const maxHeld = opts.maxHeld ?? 10_000;
  let held = 0;

  const sweep = (now: number) => {
    for (const [k, w] of windows) if (w.resetAt <= now) windows.delete(k);
    // Still full of open windows: a spread of addresses this wide is an attack on the table itself.
    if (windows.size >= max) windows.clear();
  };

  return function rateLimit(req: FastifyRequest, reply: FastifyReply, done: () => void): void {
    if (opts.exempt.has(pathOf(req.url))) {
      done();
      return;
    }
    const now = Date.now();
    const client = clientOf(req);
    let w = windows.get(client);
    if (w === undefined || w.resetAt <= now) {
      if (w === undefined && windows.size >= max) sweep(now);
      w = { resetAt: now + WINDOW_MS, count: 0 };
      windows.set(client, w);
    }
    w.count += 1;
    const remaining = Math.max(0, opts.perMinute - w.count);
    const resetSeconds = Math.ceil((w.resetAt - now) / 1000);
    reply.header('x-ratelimit-limit', opts.perMinute).header('x-ratelimit-remaining', remaining).header('x-ratelimit-reset', resetSeconds);
    if (w.count <= opts.perMinute) {
      done();
      return;
    }
    const refuse = () => {
      if (reply.sent || reply.raw.destroyed) return;
      // Closed after the answer: a client over its limit keeps no connection the event loop must
      // serve ahead of new ones.
      reply
        .status(429)
        .header('retry-after', resetSeconds)
        .send({
          error: 'Too Many Requests',
          code: 'VIGIL_ERR_RATE_LIMITED',
          message: `more than ${opts.perMinute} requests a minute from this address; retry in ${resetSeconds} seconds`,
        });
    };
    // Held a moment before the answer (a bounded number at once): a flooding client then waits
    // instead of resending at once, so 2,000 flooding connections cannot keep the event loop busy
    // enough to starve a health check on a fresh connection. Past the bound, refused at once.
    if (holdMs > 0 && held < maxHeld) {
      held += 1;
      setTimeout(() => {
        held -= 1;
        refuse();
      }, holdMs).unref();
      return;
    }
    refuse();
  };
}
