import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { codeOf } from '../lib/errors.js';
import type { Ping, PushInbox } from '../lib/push-inbox.js';
import type { ProbeDefinition } from '../probers/index.js';

/** What the push routes need: the push probes' tokens, the inbox, and the way to run a probe at once. */
export interface PushRouteDeps {
  /** The probes as configured now: a reload changes the tokens at once. */
  probes(): readonly ProbeDefinition[];
  inbox: PushInbox;
  /** Runs a probe now (the scheduler's run-now), so each ping shows in the run history and resolves at once. */
  runNow(id: string): Promise<unknown>;
  now(): number;
  /** Pings a minute per client address, on top of the API-wide limit. */
  perMinute?: number;
}

/** The prefix of every push URL; what follows it is a credential. */
export const PUSH_PREFIX = '/api/v1/push/';
/** A job's report may say why it failed; more than this is refused (413), not cut silently. */
const BODY_LIMIT = 10 * 1024;
/** A run-now refused because the probe's scheduled run is in flight is retried this often, this many times. */
const RETRY_MS = 100;
const MAX_RETRIES = 30;

/**
 * `/api/v1/push/<token>` with an optional suffix, as logs and the audit may show it: the token
 * hidden, the suffix (start, fail, an exit code) kept. `path` is the decoded request path.
 */
export function loggablePushPath(path: string): string {
  const at = path.toLowerCase().indexOf(PUSH_PREFIX);
  if (at < 0) return path;
  const rest = path.slice(at + PUSH_PREFIX.length);
  const suffix = /^[^/]*\/(start|fail|\d{1,3})\/?$/.exec(rest)?.[1];
  return `${PUSH_PREFIX}<token>${suffix === undefined ? '' : `/${suffix}`}`;
}

/**
 * `GET|POST /api/v1/push/:token[/start|/fail|/<exit code>]`: the dead-man's switch of push probes.
 * No bearer token: the push token in the URL is the credential. It is looked up by its SHA-256 (the
 * raw token never keys a map, so no lookup time depends on how much of a guess was right), and it
 * never reaches a log line: the request log shows `/api/v1/push/<token>`.
 */
export function registerPushRoutes(app: FastifyInstance, deps: PushRouteDeps): void {
  const lookup = tokenLookup(deps.probes);
  const kick = runAtOnce(deps.runNow);

  app.register(async (scope) => {
    // A job sends what it likes (curl -d is a form, --data-binary @log a text): every type is read as text.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

    const options = {
      bodyLimit: BODY_LIMIT,
      logSerializers: {
        req: (req: FastifyRequest) => ({ method: req.method, url: loggablePushPath(pathOnly(req.url)), remoteAddress: req.ip }),
      },
      config: { rateLimit: { max: deps.perMinute ?? 120, timeWindow: 60_000 } },
    };
    type One = { Params: { token: string } };
    type Two = { Params: { token: string; what: string } };
    const handle = (req: FastifyRequest, reply: FastifyReply, token: string, what: string | undefined) => {
      const ping = pingOf(what, deps.now(), req.body);
      const id = ping && lookup(token);
      if (ping === undefined || id === undefined) {
        return reply.status(404).send({ error: 'Not Found', code: 'VIGIL_ERR_NOT_FOUND', message: 'not found' });
      }
      deps.inbox.record(id, ping);
      kick(id, (err) => req.log.warn({ err, probe: id }, 'push ping: the run it triggered failed to start'));
      return reply.type('text/plain; charset=utf-8').send('OK');
    };
    for (const method of ['GET', 'POST'] as const) {
      scope.route<One>({
        method,
        url: `${PUSH_PREFIX}:token`,
        ...options,
        handler: (req, reply) => handle(req, reply, req.params.token, undefined),
      });
      scope.route<Two>({
        method,
        url: `${PUSH_PREFIX}:token/:what`,
        ...options,
        handler: (req, reply) => handle(req, reply, req.params.token, req.params.what),
      });
    }
  });
}

/** The ping a URL suffix stands for; undefined for a suffix that is none of start, fail, 0–255. */
function pingOf(what: string | undefined, at: number, body: unknown): Ping | undefined {
  const text = typeof body === 'string' && body.trim() !== '' ? body.trim() : undefined;
  const withBody = (p: Ping): Ping => (text === undefined ? p : { ...p, body: text });
  if (what === undefined) return withBody({ kind: 'success', at });
  if (what === 'start') return withBody({ kind: 'start', at });
  if (what === 'fail') return withBody({ kind: 'fail', at });
  if (!/^\d{1,3}$/.test(what)) return undefined;
  const code = Number(what);
  if (code > 255) return undefined;
  return withBody(code === 0 ? { kind: 'success', at } : { kind: 'fail', at, exitCode: code });
}

/** Token → probe id through SHA-256 digests, rebuilt when the probe list changes (a reload). */
function tokenLookup(probes: () => readonly ProbeDefinition[]): (token: string) => string | undefined {
  let from: readonly ProbeDefinition[] | undefined;
  let byDigest = new Map<string, string>();
  return (token) => {
    const list = probes();
    if (list !== from) {
      byDigest = new Map(list.flatMap((p) => (p.kind === 'push' ? [[digest(p.token), p.id] as const] : [])));
      from = list;
    }
    return byDigest.get(digest(token));
  };
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}

/**
 * Runs a probe once per burst of pings: a ping while its run is going asks for one more run after
 * it (which takes every ping since), never one run per ping. A run-now refused because a scheduled
 * run is in flight is retried shortly: that run may have read the inbox before the ping came.
 */
function runAtOnce(runNow: (id: string) => Promise<unknown>) {
  const pending = new Map<string, { again: boolean }>();
  const pause = () => new Promise<void>((r) => setTimeout(r, RETRY_MS).unref());
  return (id: string, onError: (err: unknown) => void) => {
    const going = pending.get(id);
    if (going) {
      going.again = true;
      return;
    }
    const state = { again: true };
    pending.set(id, state);
    void (async () => {
      let retries = 0;
      try {
        while (state.again) {
          state.again = false;
          try {
            await runNow(id);
          } catch (err) {
            if (codeOf(err) !== 'VIGIL_ERR_CONFLICT' || retries++ >= MAX_RETRIES) {
              // Not scheduled here (another location's probe) or vigil is stopping: the next run takes the ping.
              if (codeOf(err) !== 'VIGIL_ERR_UNAVAILABLE') onError(err);
              return;
            }
            state.again = true;
            await pause();
          }
        }
      } finally {
        pending.delete(id);
      }
    })();
  };
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
