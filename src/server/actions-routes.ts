import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../lib/clock.js';
import { VigilError } from '../lib/errors.js';
import { own } from '../lib/own.js';
import { type LinkAction, verifyAction, verifySlackRequest } from '../lib/signing.js';
import type { Incident } from '../store/index.js';

/** What the one-click link and Slack button routes need. */
export interface ActionRouteDeps {
  clock: Clock;
  /** Verifies `/act/:token` links; the link routes are off (404) without it. */
  linkSecret?: string;
  /** Verifies Slack's requests to `/slack/actions`; the route is off (404) without it. */
  slackSigningSecret?: string;
  acknowledge(id: number, actor: string): Promise<Incident>;
  resolve(id: number, actor: string): Promise<Incident>;
  incident(id: number): Promise<Incident | undefined>;
  /** Requests a minute per client address on these routes: a link is a credential, not to be guessed at. */
  perMinute?: number;
}

/** The actor recorded for a change made through a signed link: the link names no person. */
const LINK_ACTOR = 'link';

/** Slack's button ids, as the slack channel renders them. */
const SLACK_ACTIONS: Record<string, LinkAction> = { vigil_ack: 'ack', vigil_resolve: 'resolve' };

// Slack's block_actions payloads carry the whole message they came from; this bounds them generously.
const FORM_BODY_LIMIT = 1024 * 1024;

/**
 * The page is a capability (the token is in its URL): nothing may load from elsewhere, frame it,
 * cache it, or carry its address away in a Referer.
 */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex',
} as const;

const WORDS = {
  ack: { verb: 'Acknowledge', done: 'acknowledged', elsewhere: 'acknowledge' },
  resolve: { verb: 'Resolve', done: 'resolved', elsewhere: 'resolve' },
} as const;

/**
 * `GET`/`POST /act/:token` (signed one-click links from pages) and `POST /slack/actions` (Slack
 * interactive buttons). Registered in a scope of their own: the form-body parser they need keeps the
 * raw text for Slack's signature and must not change how the rest of the API reads bodies.
 */
export function registerActionRoutes(app: FastifyInstance, deps: ActionRouteDeps): void {
  const { linkSecret, slackSigningSecret } = deps;
  if (!linkSecret && !slackSigningSecret) return;

  app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
    if (linkSecret) registerLinkRoutes(scope, deps, linkSecret);
    if (slackSigningSecret) registerSlackRoute(scope, deps, slackSigningSecret);
  });
}

/** The per-route limit of these routes (see @fastify/rate-limit's route config). */
const limitOf = (deps: ActionRouteDeps) => ({ rateLimit: { max: deps.perMinute ?? 30, timeWindow: 60_000 } });

/** The token is a bearer credential for a day: request logs show the route, never the link itself. */
const hideToken = {
  req: (req: FastifyRequest) => ({ method: req.method, url: '/act/<token>', remoteAddress: req.ip }),
};

function registerLinkRoutes(app: FastifyInstance, deps: ActionRouteDeps, secret: string): void {
  type Params = { Params: { token: string } };

  // A read only: mail scanners and chat unfurlers fetch links before any person clicks them.
  const limited = limitOf(deps);
  app.get<Params>('/act/:token', { logSerializers: hideToken, config: limited }, async (req, reply) => {
    const claim = check(req, reply, deps, secret);
    if (!claim) return reply;
    const i = await deps.incident(claim.incidentId);
    if (!i) return notFound(reply, claim.incidentId);
    const words = WORDS[claim.action];
    const moot = already(i, claim.action);
    if (moot) {
      return send(reply, 200, `Incident #${i.id} is ${moot}`, [`<p>Nothing to do: incident #${i.id} is ${esc(moot)}.</p>`, facts(i)]);
    }
    return send(reply, 200, `${words.verb} incident #${i.id}?`, [
      `<p>This link will <strong>${words.elsewhere}</strong> the incident below. Nothing has changed yet.</p>`,
      facts(i),
      `<form method="post"><button type="submit">${words.verb} incident #${i.id}</button></form>`,
      `<p class="note">The link works until ${esc(when(claim.expiresAt))}.</p>`,
    ]);
  });

  app.post<Params>('/act/:token', { logSerializers: hideToken, config: limited }, async (req, reply) => {
    req.caller = { name: LINK_ACTOR, role: 'operator' };
    const claim = check(req, reply, deps, secret);
    if (!claim) return reply;
    const before = await deps.incident(claim.incidentId);
    if (!before) return notFound(reply, claim.incidentId);
    let after: Incident;
    try {
      after = await (claim.action === 'ack' ? deps.acknowledge(claim.incidentId, LINK_ACTOR) : deps.resolve(claim.incidentId, LINK_ACTOR));
    } catch (err) {
      if (err instanceof VigilError && err.code === 'VIGIL_ERR_NOT_FOUND') return notFound(reply, claim.incidentId);
      if (err instanceof VigilError && err.code === 'VIGIL_ERR_CONFLICT') {
        // Someone else got there first (another link, Slack, the API): say who and when, not just "no".
        const now = (await deps.incident(claim.incidentId)) ?? before;
        const moot = already(now, claim.action) ?? now.state;
        return send(reply, 409, `Already ${WORDS[claim.action].done}`, [
          `<p>Nothing changed: incident #${now.id} is already ${esc(moot)}.</p>`,
          facts(now),
        ]);
      }
      throw err;
    }
    req.log.info({ incident: after.id, action: claim.action, actor: LINK_ACTOR }, 'incident changed from a link');
    return send(reply, 200, `Incident #${after.id} ${WORDS[claim.action].done}`, [
      `<p>Done: incident #${after.id} is now <strong>${esc(after.state)}</strong>.</p>`,
      facts(after),
    ]);
  });
}

/** Verifies the link; on refusal answers the page and returns undefined. */
function check(
  req: FastifyRequest<{ Params: { token: string } }>,
  reply: FastifyReply,
  deps: ActionRouteDeps,
  secret: string,
): { incidentId: number; action: LinkAction; expiresAt: number } | undefined {
  const v = verifyAction(req.params.token, secret, deps.clock.now());
  if (v.ok) return { incidentId: v.incidentId, action: v.action, expiresAt: v.expiresAt };
  req.log.info({ reason: v.reason }, 'action link refused');
  if (v.reason === 'expired') {
    const w = WORDS[v.action];
    send(reply, 410, 'This link has expired', [
      `<p>This link expired at ${esc(when(v.expiresAt))}; ${w.elsewhere} incident #${v.incidentId} from the API or a newer page.</p>`,
    ]);
    return undefined;
  }
  send(reply, 403, 'This link is not valid', [
    v.reason === 'malformed'
      ? '<p>This link is incomplete or damaged: copy the whole address from the page, or act from the API or a newer page.</p>'
      : '<p>This link was altered, or it was signed with a secret vigil no longer uses. Act from the API or a newer page.</p>',
  ]);
  return undefined;
}

function notFound(reply: FastifyReply, id: number): FastifyReply {
  return send(reply, 404, 'No such incident', [
    `<p>vigil has no incident #${id}. It may belong to another vigil instance, or its history was removed.</p>`,
  ]);
}

/** Why the action has nothing left to do, or undefined when it still has. */
function already(i: Incident, action: LinkAction): string | undefined {
  if (i.state === 'resolved') return `resolved${by(i.resolvedBy, i.resolvedAt)}`;
  if (action === 'ack' && i.state === 'acknowledged') return `acknowledged${by(i.ackedBy, i.ackedAt)}`;
  return undefined;
}

function by(actor: string | undefined, at: number | undefined): string {
  return `${actor ? ` by ${actor}` : ''}${at !== undefined ? ` at ${when(at)}` : ''}`;
}

function facts(i: Incident): string {
  const rows: Array<[string, string]> = [
    ['Incident', `#${i.id}`],
    ['Probe', `${i.probeId} (${i.kind})`],
    ['Summary', i.summary],
    ['Severity', i.severity],
    ['State', i.state],
    ['Opened', when(i.openedAt)],
  ];
  if (i.ackedBy) rows.push(['Acknowledged by', `${i.ackedBy}${i.ackedAt !== undefined ? ` at ${when(i.ackedAt)}` : ''}`]);
  if (i.resolvedAt !== undefined) rows.push(['Resolved', `${when(i.resolvedAt)}${i.resolvedBy ? ` by ${i.resolvedBy}` : ''}`]);
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

/** `2026-11-26 12:00:00 UTC`: one zone for everyone who reads the page. */
function when(t: number): string {
  return `${new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '')} UTC`;
}

function send(reply: FastifyReply, status: number, title: string, body: string[]): FastifyReply {
  return reply.status(status).headers(PAGE_HEADERS).send(page(title, body));
}

/** A whole page in one response: the CSP allows nothing else to load. */
function page(title: string, body: string[]): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${esc(title)} · vigil</title>`,
    '<style>',
    'body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;color:#222;max-width:40em;margin:2em auto;padding:0 1em}',
    'h1{font-size:20px}th{text-align:left;color:#555;font-weight:normal;padding:2px 12px 2px 0;vertical-align:top}td{padding:2px 0}',
    'table{margin:1em 0}button{font-size:16px;padding:8px 20px;cursor:pointer}.note{color:#666;font-size:13px}',
    '</style></head><body>',
    `<h1>${esc(title)}</h1>`,
    ...body,
    '</body></html>',
  ].join('\n');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Summaries quote whatever the probed target answered. */
function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** What vigil reads of Slack's block_actions payload. */
/** An own field of a value parsed from Slack's JSON, or undefined when the value is no object or lacks it. */
function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, key) ? Reflect.get(value, key) : undefined;
}

function registerSlackRoute(app: FastifyInstance, deps: ActionRouteDeps, secret: string): void {
  app.post('/slack/actions', { config: limitOf(deps) }, async (req, reply) => {
    // Answered here rather than thrown: the body shape is the API's, and Slack is the only reader.
    const refuse = (status: 400 | 401 | 415, message: string) =>
      reply.status(status).send({
        error: status === 401 ? 'Unauthorized' : status === 415 ? 'Unsupported Media Type' : 'Bad Request',
        code: status === 401 ? 'VIGIL_ERR_UNAUTHORIZED' : 'VIGIL_ERR_BAD_REQUEST',
        message,
      });
    // The signature covers the bytes Slack sent; only the form parser of this scope keeps them.
    if (typeof req.body !== 'string') return refuse(415, 'Slack actions arrive as application/x-www-form-urlencoded');
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const verdict = verifySlackRequest({
      signingSecret: secret,
      timestamp: header('x-slack-request-timestamp'),
      signature: header('x-slack-signature'),
      rawBody: req.body,
      now: deps.clock.now(),
    });
    if (!verdict.ok) {
      req.log.warn({ reason: verdict.reason }, 'slack request refused');
      const why = verdict.reason === 'stale' ? 'its timestamp is more than 5 minutes from now' : `its signature is ${verdict.reason}`;
      return refuse(401, `not a verified Slack request: ${why}`);
    }

    let payload: unknown;
    try {
      payload = JSON.parse(new URLSearchParams(req.body).get('payload') ?? '');
    } catch {
      return refuse(400, 'the form has no JSON payload field');
    }
    const actions = field(payload, 'actions');
    const first: unknown = Array.isArray(actions) ? actions[0] : undefined;
    const actionId = field(first, 'action_id');
    const value = field(first, 'value');
    const action = typeof actionId === 'string' ? own(SLACK_ACTIONS, actionId) : undefined;
    const id = typeof value === 'string' && /^[1-9]\d{0,15}$/.test(value) ? Number(value) : undefined;
    // Other interactions (other apps' buttons, modals) are not vigil's: Slack still wants a 200.
    if (field(payload, 'type') !== 'block_actions' || action === undefined || id === undefined) return reply.status(200).send();

    const user = field(payload, 'user');
    const username = field(user, 'username');
    const userId = field(user, 'id');
    const name = typeof username === 'string' && username ? username : typeof userId === 'string' ? userId : 'unknown';
    const actor = `slack:${name.slice(0, 80)}`;
    req.caller = { name: actor, role: 'operator' };
    try {
      await (action === 'ack' ? deps.acknowledge(id, actor) : deps.resolve(id, actor));
      req.log.info({ incident: id, action, actor }, 'incident changed from slack');
    } catch (err) {
      // A second click, or a button on a message older than the incident's history: the message already shows the state.
      if (!(err instanceof VigilError) || (err.code !== 'VIGIL_ERR_CONFLICT' && err.code !== 'VIGIL_ERR_NOT_FOUND')) throw err;
      req.log.info({ incident: id, action, actor, reason: err.message }, 'slack action had nothing to do');
    }
    // The message itself changes through the outbox (chat.update), so Slack gets an empty 200 at once.
    return reply.status(200).send();
  });
}
