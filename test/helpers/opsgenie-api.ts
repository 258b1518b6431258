import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttp, type TestServer } from './servers.js';

/**
 * How the next requests are answered: `accept` behaves like Opsgenie (202 and processes the request,
 * 422 for an invalid alert, 404 for an action on an unknown alias); `unauthorized` is a bad key; the
 * others answer that way whatever the request; `hang` never answers.
 */
export type OpsgenieMode = 'accept' | 'invalid' | 'unauthorized' | 'throttle' | 'error' | 'hang';

/** One request as the server saw it. */
export interface OpsgenieRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
  status: number | undefined;
}

/** An alert as the stand-in keeps it, by alias. */
export interface OpsgenieAlert {
  alias: string;
  status: 'open' | 'closed';
  acknowledged: boolean;
  /** Creates folded into it (Opsgenie's de-duplication count). */
  count: number;
  create: Record<string, unknown>;
  notes: string[];
}

/** A local Opsgenie Alerts API v2 on 127.0.0.1, port 0. */
export interface OpsgenieApi extends TestServer {
  readonly requests: OpsgenieRequest[];
  /** Alerts by alias, as Opsgenie would hold them after processing the accepted requests. */
  readonly alerts: Map<string, OpsgenieAlert>;
  mode: OpsgenieMode;
  /** Modes for the next requests, one each, before `mode` applies again. */
  queue: OpsgenieMode[];
  /** Sent as Retry-After with a 429 when set. */
  retryAfter?: string;
  /** Request-status lookups answered 404 ("not processed yet") before the real answer. */
  pendingPolls: number;
  /** Creates are accepted (202) but fail when processed, with this status (an unknown responder). */
  failCreates?: string;
  reset(): void;
}

/** The key the stand-in accepts; anything else is a 401 like Opsgenie's. */
export const OPSGENIE_KEY = 'eb243592-faa2-4ba2-a551q-1afdf565c889';

const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

/** Opsgenie's documented answers (test/fixtures/providers): the stand-in answers with their words. */
const documented = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../fixtures/providers/opsgenie-${name}.json`, import.meta.url), 'utf8'));
const ACCEPTED = documented('accepted-response');
const UNPROCESSABLE = documented('error-422');
const UNAUTHORIZED = documented('error-401');
const NO_ALIAS = documented('error-404-alias');
const THROTTLED = documented('error-429');
const STATUS = documented('request-status-response');

/**
 * Starts an Opsgenie stand-in: create alert, acknowledge and close by alias, and request status,
 * with Opsgenie's answer bodies (see test/fixtures/providers/opsgenie-*.json).
 */
export async function startOpsgenieApi(key = OPSGENIE_KEY): Promise<OpsgenieApi> {
  const requests: OpsgenieRequest[] = [];
  const alerts = new Map<string, OpsgenieAlert>();
  const outcomes = new Map<string, { isSuccess: boolean; status: string; alias: string; action: string }>();
  const state = {
    mode: 'accept' as OpsgenieMode,
    queue: [] as OpsgenieMode[],
    retryAfter: undefined as string | undefined,
    pendingPolls: 0,
    failCreates: undefined as string | undefined,
  };
  const hanging = new Set<ServerResponse>();

  const server = await startHttp((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Kept as text: a create answers 422 for it.
    }
    const url = new URL(req.url ?? '/', 'http://opsgenie.local');
    const record: OpsgenieRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      body,
      status: undefined,
    };
    requests.push(record);
    const requestId = randomUUID();
    const send = (status: number, payload: Record<string, unknown>, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ ...payload, took: 0.004, requestId }));
    };
    const accepted = (action: string, alias: string, isSuccess: boolean, status: string) => {
      outcomes.set(requestId, { isSuccess, status, alias, action });
      send(202, { result: ACCEPTED.result });
    };

    const mode = state.queue.shift() ?? state.mode;
    if (mode === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (mode === 'throttle') return send(429, { message: THROTTLED.message }, state.retryAfter ? { 'retry-after': state.retryAfter } : {});
    if (mode === 'error') {
      record.status = 503;
      res.writeHead(503, { 'content-type': 'text/html' });
      return res.end('<html><body>503 Service Temporarily Unavailable</body></html>');
    }
    if (mode === 'unauthorized' || req.headers.authorization !== `GenieKey ${key}`) {
      return send(401, { message: UNAUTHORIZED.message });
    }
    if (mode === 'invalid') return send(422, { message: UNPROCESSABLE.message, errors: UNPROCESSABLE.errors });

    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (req.method === 'POST' && parts.length === 2 && parts[0] === 'v2' && parts[1] === 'alerts') {
      const errors = validate(body);
      if (Object.keys(errors).length > 0) return send(422, { message: UNPROCESSABLE.message, errors });
      const alert = body as Record<string, unknown>;
      const alias = typeof alert.alias === 'string' ? alert.alias : randomUUID();
      if (state.failCreates !== undefined) return accepted('Create', alias, false, state.failCreates);
      const open = alerts.get(alias);
      if (open && open.status === 'open') open.count++;
      else alerts.set(alias, { alias, status: 'open', acknowledged: false, count: 1, create: alert, notes: [] });
      return accepted('Create', alias, true, 'Created alert');
    }
    if (
      req.method === 'POST' &&
      parts.length === 4 &&
      parts[0] === 'v2' &&
      parts[1] === 'alerts' &&
      ['acknowledge', 'close'].includes(parts[3] ?? '')
    ) {
      const alias = parts[2] ?? '';
      if (url.searchParams.get('identifierType') !== 'alias') return send(400, { message: 'identifierType must be alias here' });
      const alert = alerts.get(alias);
      if (!alert) return send(404, { message: NO_ALIAS.message });
      const note = (body as { note?: unknown } | undefined)?.note;
      if (typeof note === 'string') alert.notes.push(note);
      if (parts[3] === 'close') alert.status = 'closed';
      else alert.acknowledged = true;
      return accepted(
        parts[3] === 'close' ? 'Close' : 'Acknowledge',
        alias,
        true,
        parts[3] === 'close' ? 'Closed alert' : 'Acknowledged alert',
      );
    }
    if (req.method === 'GET' && parts.length === 4 && parts[0] === 'v2' && parts[2] === 'requests') {
      const outcome = outcomes.get(parts[3] ?? '');
      if (!outcome || state.pendingPolls > 0) {
        state.pendingPolls = Math.max(0, state.pendingPolls - 1);
        return send(404, { message: 'Request not found. It might not be processed, yet.' });
      }
      return send(200, { data: { ...(STATUS.data as object), processedAt: new Date().toISOString(), ...outcome } });
    }
    return send(404, { message: 'Could not find the requested resource' });
  }

  return {
    url: server.url,
    port: server.port,
    get connections() {
      return server.connections;
    },
    requests,
    alerts,
    get mode() {
      return state.mode;
    },
    set mode(m: OpsgenieMode) {
      state.mode = m;
    },
    get queue() {
      return state.queue;
    },
    set queue(q: OpsgenieMode[]) {
      state.queue = q;
    },
    get retryAfter() {
      return state.retryAfter;
    },
    set retryAfter(v: string | undefined) {
      state.retryAfter = v;
    },
    get pendingPolls() {
      return state.pendingPolls;
    },
    set pendingPolls(n: number) {
      state.pendingPolls = n;
    },
    get failCreates() {
      return state.failCreates;
    },
    set failCreates(v: string | undefined) {
      state.failCreates = v;
    },
    reset() {
      state.failCreates = undefined;
      state.mode = 'accept';
      state.queue = [];
      state.retryAfter = undefined;
      state.pendingPolls = 0;
      requests.length = 0;
      alerts.clear();
      outcomes.clear();
    },
    async close() {
      for (const res of hanging) res.destroy();
      await server.close();
    },
  };
}

/** Opsgenie's documented checks on a create, in its wording. */
function validate(body: unknown): Record<string, string> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { body: 'Body must be a JSON object.' };
  const a = body as Record<string, unknown>;
  const errors: Record<string, string> = {};
  if (typeof a.message !== 'string' || a.message.trim() === '') errors.message = 'Message can not be empty.';
  else if (a.message.length > 130) errors.message = 'Message can not be longer than 130 characters.';
  if (a.alias !== undefined && (typeof a.alias !== 'string' || a.alias.length > 512))
    errors.alias = 'Alias can not be longer than 512 characters.';
  if (typeof a.description === 'string' && a.description.length > 15_000)
    errors.description = 'Description can not be longer than 15000 characters.';
  if (a.priority !== undefined && !PRIORITIES.includes(a.priority as string))
    errors.priority = 'Priority should be one of [P1, P2, P3, P4, P5].';
  if (typeof a.source === 'string' && a.source.length > 100) errors.source = 'Source can not be longer than 100 characters.';
  if (Array.isArray(a.tags) && a.tags.length > 20) errors.tags = 'Tags can not contain more than 20 items.';
  if (a.details !== undefined && (a.details === null || typeof a.details !== 'object' || Array.isArray(a.details)))
    errors.details = 'Details must be a map.';
  if (a.details && JSON.stringify(a.details).length > 8_000) errors.details = 'Details can not be longer than 8000 characters.';
  if (a.responders !== undefined) {
    if (!Array.isArray(a.responders)) errors.responders = 'Responders must be a list.';
    else
      for (const r of a.responders as Array<Record<string, unknown>>)
        if (!['team', 'user', 'escalation', 'schedule'].includes(r?.type as string) || !(r.id || r.name || r.username))
          errors.responders = 'Responder should have a type and one of id, name or username.';
  }
  return errors;
}
