import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import { type Static, Type } from '@sinclair/typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Registry } from 'prom-client';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Redactor } from '../lib/redactor.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { Scheduler } from '../scheduler/index.js';
import type { AuditLog, RunRecord, Store, StoredRun } from '../store/index.js';
import { type ActionRouteDeps, registerActionRoutes } from './actions-routes.js';
import { type AdminRouteDeps, registerAdminRoutes } from './admin-routes.js';
import { type AlertRouteDeps, registerAlertRoutes } from './alerts-routes.js';
import { type ArtifactRouteDeps, registerArtifactRoutes } from './artifact-routes.js';
import { type ApiToken, authenticate, type Caller } from './auth.js';
import type { HealthCheck } from './health.js';
import { metricsBody } from './metrics-body.js';
import { type OncallRouteDeps, registerOncallRoutes } from './oncall-routes.js';
import { registerOpenApi, vigilVersion } from './openapi.js';
import { isPublicPage, type PageRouteDeps, registerPageRoutes } from './page-routes.js';
import { instant } from './params.js';
import { loggablePushPath, PUSH_PREFIX, type PushRouteDeps, registerPushRoutes } from './push-routes.js';
import { clientOf, createRateLimit, pathOf } from './rate-limit.js';
import { createRefusals, refusalOf } from './refusals.js';
import { type ReportRouteDeps, registerReportRoutes } from './report-routes.js';
import { type RunbookRouteDeps, registerRunbookRoutes } from './runbook-routes.js';
import { guardStore } from './store-guard.js';

export type { ApiToken } from './auth.js';
export { createHealth, type HealthCheck, type HealthDeps } from './health.js';
/** The HTTP server as the rest of vigil sees it (tests inject requests into it). */
export type HttpServer = FastifyInstance;

export interface ServerDeps {
  logger: Logger;
  registry: Registry;
  store: Store;
  scheduler: Pick<Scheduler, 'runNow' | 'isRunning'>;
  /** The probes as configured now (changes on reload). */
  probes(): readonly ProbeDefinition[];
  /** A copy of a definition safe to show: secrets replaced by `<secret>`. */
  redact<T>(value: T): T;
  /**
   * Every secret the config ever held, in every form: the last pass over every answer (JSON, the
   * status page, the confirm page, errors), whatever a route put in it. None when absent.
   */
  redactor?(): Redactor;
  /** vigil's own health, check by check. */
  health(): Record<string, HealthCheck>;
  /** Bearer tokens for writes (and reads, when `access.reads` is `token`). Read on every request, so a reload takes effect at once. */
  tokens: readonly ApiToken[];
  /** Who may read: everyone, or viewer tokens and up; `/health` stays open for load balancers. */
  access?: { reads: 'public' | 'token'; metrics: 'public' | 'token' };
  /** Requests per minute per client address: the API as a whole, and the one-click links. */
  rateLimit?: { perMinute: number; linksPerMinute: number; hold?: string };
  /** Every write (POST, PUT, PATCH, DELETE), whatever its outcome, is recorded here. */
  audit?: Pick<AuditLog, 'record'>;
  /** When audit entries happen. */
  now?: () => number;
  /** One-click links and Slack buttons: acknowledge and resolve from where the page arrives. */
  actions?: ActionRouteDeps;
  /** On-call schedules and overrides. */
  oncall?: Omit<OncallRouteDeps, 'tokens'>;
  /** The audit log and config reload; admin tokens only. */
  admin?: Omit<AdminRouteDeps, 'tokens'>;
  /** The 30-day report and the status page at `/`. */
  report?: ReportRouteDeps;
  /** `/probes/:id`, the public status page at `/status` and the badges. */
  pages?: PageRouteDeps;
  /** Incidents, silences and channels; absent in a server without alerting. */
  alerting?: Omit<AlertRouteDeps, 'tokens'>;
  /** vigil's own runbooks, linked from its own probes' alerts. */
  runbooks?: RunbookRouteDeps;
  /** The push probes' ping endpoint (`/api/v1/push/:token`); off without it. */
  push?: Pick<PushRouteDeps, 'inbox' | 'perMinute'>;
  /** Files runs kept (a failed browser run's screenshot and trace), served by run id; off without it. */
  artifacts?: Pick<ArtifactRouteDeps, 'dataDir'>;
}

const STATUS: Record<string, number> = {
  VIGIL_ERR_NOT_FOUND: 404,
  VIGIL_ERR_BAD_REQUEST: 400,
  VIGIL_ERR_CONFLICT: 409,
  VIGIL_ERR_UNAVAILABLE: 503,
  VIGIL_ERR_STORE: 503,
  VIGIL_ERR_UNAUTHORIZED: 401,
  VIGIL_ERR_FORBIDDEN: 403,
  VIGIL_ERR_RATE_LIMITED: 429,
};

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request, once a token (or a signed link, or Slack) said so; for the audit log. */
    caller?: Caller;
  }
  interface FastifyReply {
    /** The error a failed request ended with, for its audit entry. */
    vigilError?: string;
  }
}

/** The API's error code for a 4xx Fastify raised itself. */
function codeFor(status: number): string {
  return (
    {
      401: 'VIGIL_ERR_UNAUTHORIZED',
      403: 'VIGIL_ERR_FORBIDDEN',
      404: 'VIGIL_ERR_NOT_FOUND',
      409: 'VIGIL_ERR_CONFLICT',
      413: 'VIGIL_ERR_PAYLOAD_TOO_LARGE',
      414: 'VIGIL_ERR_URI_TOO_LONG',
      415: 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE',
      429: 'VIGIL_ERR_RATE_LIMITED',
    }[status] ?? 'VIGIL_ERR_BAD_REQUEST'
  );
}

/** Paths that are never behind a read token: load balancers and container health checks need them. */
const OPEN_PATHS = new Set(['/health']);
/** Paths never rate-limited: they are the monitoring of vigil itself. Matched by path, query aside. */
const UNLIMITED_PATHS = new Set(['/health', '/metrics']);

// `/act/<token>` in any spelling the router might still take for it: the token is a credential.
const LINK_PATH = /\/act(?:\/|%2f)/i;
const PUSH_PATH = /\/api\/v1\/push(?:\/|%2f)/i;

/** A request URL as logs and the audit log may show it: a one-click link's token (and what follows) hidden. */
export function loggableUrl(url: string): string {
  const m = LINK_PATH.exec(url);
  if (m) return `${url.slice(0, m.index)}/act/<token>`;
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathOf(url));
  } catch {
    return PUSH_PATH.test(url) ? `${PUSH_PREFIX}<token>` : url;
  }
  if (LINK_PATH.test(decoded)) return '/act/<token>';
  // A push probe's token is a credential too.
  return PUSH_PATH.test(decoded) ? loggablePushPath(decoded) : url;
}

/**
 * Request logging as vigil wants it: one line when a request ends (not one more when it starts), the
 * URL without link tokens, and none for refused anonymous requests, which the refusal summary counts.
 */
class RequestLog extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    if (refusalOf(reply.statusCode) !== undefined) return;
    const fields = {
      // Shaped for Fastify's `req` serializer (it reads method, url, host, ip, socket), with the URL made safe.
      req: { method: req.method, url: loggableUrl(req.url), host: req.host, ip: req.ip, socket: req.socket, headers: {} },
      res: { statusCode: reply.statusCode },
      responseTime: reply.elapsedTime,
    };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
/** ISO 8601 date-time or epoch milliseconds. */
const Instant = Type.String({ minLength: 1, maxLength: 40 });
const RunsQuery = Type.Object(
  {
    since: Type.Optional(Instant),
    until: Type.Optional(Instant),
    limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  },
  { additionalProperties: false },
);
const RunNowQuery = Type.Object({ wait: Type.Boolean({ default: true }) }, { additionalProperties: false });

/** The HTTP surface: vigil's health, metrics and the read/act API. The only module that imports Fastify. */
/**
 * Stops listening and waits for requests in flight, for at most `graceMs`; then closes every
 * connection still open. A client that sends half a body, or never reads a large answer, would
 * otherwise hold the stop until Node's request timeout (5 minutes). Node closes only the
 * connections idle when the close begins: one whose answer ends later stays open for its
 * keep-alive timeout, so idle ones are closed again as answers end. Real time, not the app's
 * clock: the wait is on sockets.
 */
export async function closeServer(app: FastifyInstance, graceMs: number, logger: Logger): Promise<void> {
  const closing = app.close();
  const idle = setInterval(() => app.server.closeIdleConnections(), 50);
  const grace = setTimeout(() => {
    logger.warn({ graceMs }, 'closing HTTP connections still open after the grace');
    app.server.closeAllConnections();
  }, graceMs);
  try {
    await closing;
  } finally {
    clearInterval(idle);
    clearTimeout(grace);
  }
}

export function createServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ module: 'http' }) as FastifyBaseLogger,
    requestIdHeader: false,
    logController: new RequestLog({ requestIdLogLabel: 'requestId' }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } },
    // The router's own refusals (a bad percent-escape, a 10 KB path segment) go through the same
    // error shape as everything else instead of Fastify's.
    // The reply is typed as a plain FastifyReply: this one answers before any route (and its generic) was matched.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      reply.status(status).send({ error: STATUS_CODES[status] ?? 'Bad Request', code: codeFor(status), message: err.message });
    },
  });

  app.decorateRequest('caller', undefined);
  strictJsonBodies(app);
  app.addHook('preHandler', async (req) => {
    for (const [where, value] of [
      ['querystring', req.query],
      ['params', req.params],
      ['body', req.body],
    ] as const) {
      const bad = nonFinite(value, where);
      if (bad) throw new VigilError('VIGIL_ERR_BAD_REQUEST', `${bad.path} must be a finite number, got ${bad.value}`);
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  const limits = deps.rateLimit ?? { perMinute: 600, linksPerMinute: 30 };
  // Before authentication and before the router's 404: a wrong token or a guessed path counts too.
  app.addHook(
    'onRequest',
    createRateLimit({ perMinute: limits.perMinute, exempt: UNLIMITED_PATHS, holdMs: limits.hold === undefined ? 0 : ms(limits.hold) }),
  );
  const redactor = deps.redactor;
  if (redactor) {
    // On the finished text, so no route can forget it. Not /metrics: its text is large, scraped
    // often and made only of ids, kinds and value names, the latter from results redacted when made.
    app.addHook('onSend', async (req, _reply, payload) =>
      typeof payload === 'string' && req.url !== '/metrics' ? redactor().text(payload) : payload,
    );
  }

  const access = deps.access ?? { reads: 'public', metrics: 'public' };
  // Reads behind a token: everything but /health, and the signed links and Slack callbacks, which
  // carry their own proof. Writes check their own (higher) role in their handlers.
  app.addHook('onRequest', async (req) => {
    const path = pathOf(req.url);
    // Push pings carry their own credential (the token in the URL), like the signed links.
    if (OPEN_PATHS.has(path) || path.startsWith('/act/') || path === '/slack/actions' || path.startsWith(PUSH_PREFIX)) return;
    // `/status` while statusPage.public is true, and the badges of its probes: made for people without a token.
    if (deps.pages && isPublicPage(deps.pages, path)) return;
    const needs = path === '/metrics' ? access.metrics : access.reads;
    if (needs === 'token' && (req.method === 'GET' || req.method === 'HEAD')) authenticate(deps.tokens, req, 'viewer');
  });

  const now = deps.now ?? Date.now;
  const refusals = createRefusals({ logger: deps.logger, registry: deps.registry, ...(deps.audit ? { audit: deps.audit } : {}), now });
  app.addHook('onClose', async () => refusals.close());
  const isWrite = (method: string) => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
  const actionOf = (req: FastifyRequest) => `${req.method} ${req.routeOptions.url ?? loggableUrl(pathOf(req.url))}`;
  app.addHook('onResponse', async (req, reply) => {
    const reason = refusalOf(reply.statusCode);
    if (reason !== undefined) refusals.note(clientOf(req), reason, isWrite(req.method), actionOf(req));
  });

  if (deps.audit) {
    const audit = deps.audit;
    app.addHook('onResponse', async (req, reply) => {
      // Refused anonymous requests are summarised per address by `refusals`, not one row each.
      if (!isWrite(req.method) || refusalOf(reply.statusCode) !== undefined) return;
      // A job's ping is no one's action on vigil: its run is the record, and its URL is a credential.
      if (req.routeOptions.url?.startsWith(PUSH_PREFIX)) return;
      const params = typeof req.params === 'object' && req.params !== null ? req.params : undefined;
      const failed = reply.statusCode >= 400;
      // Awaited here, after the answer went out: the answer does not wait on it, the entry is not lost silently.
      try {
        await audit.record({
          at: now(),
          actor: req.caller?.name ?? 'anonymous',
          action: actionOf(req),
          ...(params && Object.keys(params).length > 0 ? { target: JSON.stringify(redactToken(params)) } : {}),
          requestId: req.id,
          result: failed ? 'failure' : 'success',
          status: reply.statusCode,
          ...(failed && reply.vigilError ? { detail: reply.vigilError } : {}),
        });
      } catch (err) {
        // The write itself already happened; a full disk must not turn it into a 500 after the fact.
        // The request's log carries its requestId: the line says which write has no audit entry.
        req.log.error({ err, action: actionOf(req), status: reply.statusCode }, 'audit entry not written');
      }
    });
  }

  app.setErrorHandler((err: FastifyError | VigilError, req, reply) => {
    reply.vigilError = err.message.slice(0, 500);
    if (err instanceof VigilError) {
      const status = STATUS[err.code] ?? 500;
      if (status >= 500 && status !== 503) req.log.error({ err }, 'request failed');
      // The answer names the store only; the backend's own error goes to the log, under the request id.
      if (err.code === 'VIGIL_ERR_STORE') req.log.warn({ err: err.cause ?? err }, 'store unavailable');
      return reply.status(status).send({ error: STATUS_CODES[status] ?? 'Error', code: err.code, message: err.message });
    }
    if ('validation' in err && err.validation) {
      return reply.status(400).send({
        error: 'Bad Request',
        code: 'VIGIL_ERR_BAD_REQUEST',
        message: `${err.validationContext ?? 'request'}${err.message.replace(/^(querystring|params|body)/, '')}`,
      });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      req.log.error({ err }, 'request failed');
      return reply
        .status(500)
        .send({ error: 'Internal Server Error', code: 'VIGIL_ERR_INTERNAL', message: 'internal error; see the log for this request id' });
    }
    // Fastify's own 4xx (bad JSON, a content type it does not parse, a body too large) keep their
    // meaning but speak the API's codes.
    const code = typeof err.code === 'string' && err.code.startsWith('VIGIL_ERR_') ? err.code : codeFor(status);
    return reply.status(status).send({ error: STATUS_CODES[status] ?? 'Bad Request', code, message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: 'Not Found', code: 'VIGIL_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  registerOpenApi(app, { version: vigilVersion() });

  // Only the per-route limits of the one-click links (route config); the API-wide limit is the first hook above.
  app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      error: 'Too Many Requests',
      code: 'VIGIL_ERR_RATE_LIMITED',
      message: `more than ${ctx.max} requests a minute from this address; retry in ${ctx.after}`,
    }),
  });
  app.register(async (app) => routes(app, guarded(deps), limits.linksPerMinute));
  return app;
}

/**
 * The routes' view of `deps`: every store, and every function that only goes to the store, guarded
 * (see guardStore), so a database that fails answers 503 naming the store instead of a 500.
 */
function guarded(deps: ServerDeps): ServerDeps {
  const why = () => deps.store.health().error;
  const guard = <T extends object>(target: T) => guardStore(target, why);
  const { alerting, oncall, admin, actions, report, pages } = deps;
  return {
    ...deps,
    store: guard(deps.store),
    ...(alerting
      ? {
          alerting: {
            ...alerting,
            ...guard({
              alerts: alerting.alerts,
              acknowledge: alerting.acknowledge,
              resolve: alerting.resolve,
              testChannel: alerting.testChannel,
            }),
          },
        }
      : {}),
    ...(oncall ? { oncall: { ...oncall, alerts: guard(oncall.alerts) } } : {}),
    ...(admin ? { admin: { ...admin, audit: guard(admin.audit) } } : {}),
    ...(actions
      ? { actions: { ...actions, ...guard({ incident: actions.incident, acknowledge: actions.acknowledge, resolve: actions.resolve }) } }
      : {}),
    // The report and the status page read nothing but the store.
    ...(report ? { report: guard(report) } : {}),
    ...(pages
      ? { pages: { ...pages, ...guard({ probePage: pages.probePage, publicStatus: pages.publicStatus, badge: pages.badge }) } }
      : {}),
  };
}

/**
 * The first number that is not finite in a validated request part. ajv coerces `Infinity`, `-Infinity`
 * and `1e400` to numbers that pass `integer`, `minimum` and `maximum`, and JSON.parse reads `1e400` as
 * Infinity: every number from outside is checked here once, whatever its schema says.
 */
function nonFinite(value: unknown, path: string, depth = 0): { path: string; value: string } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value: String(value) };
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const bad = nonFinite(v, `${path}/${k}`, depth + 1);
    if (bad) return bad;
  }
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON bodies as Fastify parses them (prototype poisoning refused), but decoded strictly: invalid
 * UTF-8 is a 400, not bytes silently turned into U+FFFD and stored as if the client had sent them.
 */
function strictJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      // parseAs 'buffer' hands a Buffer; Fastify's type admits a string too.
      text = typeof body === 'string' ? body : UTF8.decode(body);
    } catch {
      done(new VigilError('VIGIL_ERR_BAD_REQUEST', 'body: not valid UTF-8; send JSON encoded as UTF-8'), undefined);
      return;
    }
    parse(req, text, done);
  });
}

/** Every route, in one plugin registered after the plugins whose hooks must see them all. */
function routes(app: FastifyInstance, deps: ServerDeps, linksPerMinute: number) {
  app.get('/health', async (_req, reply) => {
    const checks = deps.health();
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'fail', checks });
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await metricsBody(deps.registry);
    return reply.type(deps.registry.contentType).send(body);
  });

  const find = (id: string) => {
    const def = deps.probes().find((p) => p.id === id);
    if (!def) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no probe with id "${id}"`);
    return def;
  };
  const view = (def: ProbeDefinition) => {
    const last = deps.store.latest(def.id);
    return {
      id: def.id,
      kind: def.kind,
      state: last === undefined ? 'unknown' : last.ok ? 'up' : 'down',
      running: deps.scheduler.isRunning(def.id),
      lastRun: last === undefined ? null : deps.redact(runView(last)),
      // Shown like `definition.labels`: a label read through `${…}` is a secret too.
      labels: deps.redact(def.labels),
      definition: deps.redact(def),
    };
  };

  app.get('/api/v1/probes', async () => ({ probes: deps.probes().map(view) }));

  app.get<{ Params: Static<typeof IdParams> }>('/api/v1/probes/:id', { schema: { params: IdParams } }, async (req) =>
    view(find(req.params.id)),
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof RunsQuery> }>(
    '/api/v1/probes/:id/runs',
    { schema: { params: IdParams, querystring: RunsQuery } },
    async (req) => {
      const def = find(req.params.id);
      const since = instant(req.query.since, 'since');
      const until = instant(req.query.until, 'until');
      if (since !== undefined && until !== undefined && since >= until) {
        throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'querystring/since must be before until');
      }
      await deps.store.flush().catch(() => {});
      const runs = await deps.store.runs({ probeId: def.id, since, until, limit: req.query.limit });
      return { probe: def.id, runs: runs.map((r) => deps.redact(runView(r))) };
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Querystring: Static<typeof RunNowQuery> }>(
    '/api/v1/probes/:id/run',
    { schema: { params: IdParams, querystring: RunNowQuery } },
    async (req, reply) => {
      authenticate(deps.tokens, req, 'operator');
      find(req.params.id);
      // Checked here, not only in runNow: with wait=false its refusal would otherwise never reach the caller.
      if (deps.scheduler.isRunning(req.params.id)) {
        throw new VigilError('VIGIL_ERR_CONFLICT', `probe "${req.params.id}" is running now; try again when it ends`);
      }
      const run = deps.scheduler.runNow(req.params.id);
      if (!req.query.wait) {
        run.catch((err) => req.log.warn({ err }, 'run-now failed'));
        return reply.status(202).send({ probe: req.params.id, status: 'started' });
      }
      return { probe: req.params.id, run: deps.redact(runView(await run)) };
    },
  );

  if (deps.alerting) registerAlertRoutes(app, { ...deps.alerting, tokens: deps.tokens });
  if (deps.runbooks) registerRunbookRoutes(app, deps.runbooks);
  if (deps.artifacts) registerArtifactRoutes(app, { ...deps.artifacts, store: deps.store });
  if (deps.oncall) registerOncallRoutes(app, { ...deps.oncall, tokens: deps.tokens });
  if (deps.actions) registerActionRoutes(app, { ...deps.actions, perMinute: linksPerMinute });
  if (deps.report) registerReportRoutes(app, deps.report);
  if (deps.pages) registerPageRoutes(app, deps.pages);
  if (deps.admin) registerAdminRoutes(app, { ...deps.admin, tokens: deps.tokens });
  if (deps.push) {
    const now = deps.now ?? Date.now;
    registerPushRoutes(app, { ...deps.push, probes: deps.probes, runNow: (id) => deps.scheduler.runNow(id), now: () => now() });
  }
}

/** Route parameters as the audit log keeps them: a signed link's token is a credential, not a target. */
function redactToken(params: object): object {
  return 'token' in params ? { ...params, token: `${String(params.token).slice(0, 8)}…` } : params;
}

/** The API's view of a run: times as ISO strings, failure fields only on failures. */
function runView(run: RunRecord | StoredRun) {
  return {
    ...('id' in run ? { id: run.id } : {}),
    ok: run.ok,
    at: new Date(run.startedAt).toISOString(),
    durationMs: Math.round(run.durationMs * 10) / 10,
    code: run.code ?? null,
    message: run.message ?? null,
    values: run.values,
    attempts: run.attempts,
    trigger: run.trigger,
    ...(run.location !== undefined ? { location: run.location } : {}),
    ...(run.details !== undefined ? { details: run.details } : {}),
  };
}
