import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttp, type TestServer } from './servers.js';

/**
 * How the next requests are answered: `accept` validates like PagerDuty (202, or 400 for a bad
 * event); the others answer that way whatever the body; `hang` never answers.
 */
export type PagerDutyMode = 'accept' | 'invalid' | 'throttle' | 'error' | 'hang';

/** One request as the server saw it, accepted or not. */
export interface PagerDutyRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  /** Parsed JSON, or the raw text when it was not JSON. */
  body: unknown;
  status: number | undefined;
}

/** A local Events API v2 server on 127.0.0.1, port 0. */
export interface PagerDutyApi extends TestServer {
  /** Events answered 202, in arrival order. */
  readonly events: Array<Record<string, unknown>>;
  /** Every request, including the rejected and unanswered ones. */
  readonly requests: PagerDutyRequest[];
  /** How requests are answered from now on (`accept` until told otherwise). */
  mode: PagerDutyMode;
  /** Modes for the next requests, one each, before `mode` applies again: `['accept', 'error']`. */
  queue: PagerDutyMode[];
  /** Sent as Retry-After with a 429 when set. */
  retryAfter?: string;
  /** Extra lines for a forced 400's `errors`, e.g. to see they are passed on (and scrubbed). */
  extraErrors: string[];
}

const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const ACTIONS = ['trigger', 'acknowledge', 'resolve'];

/**
 * Starts a PagerDuty Events API v2 stand-in: `POST /v2/enqueue` with the checks PagerDuty documents
 * (routing_key, event_action, dedup_key ≤ 255, and for a trigger payload.summary ≤ 1024, source and
 * severity), answering with PagerDuty's own bodies.
 */
export async function startPagerDutyApi(): Promise<PagerDutyApi> {
  const events: Array<Record<string, unknown>> = [];
  const requests: PagerDutyRequest[] = [];
  const state: { mode: PagerDutyMode; queue: PagerDutyMode[]; retryAfter?: string; extraErrors: string[] } = {
    mode: 'accept',
    queue: [],
    extraErrors: [],
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
      body = JSON.parse(text);
    } catch {
      // Kept as text: the 400 below says so.
    }
    const record: PagerDutyRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      contentType: req.headers['content-type'],
      body,
      status: undefined,
    };
    requests.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };

    if (req.method !== 'POST' || req.url !== '/v2/enqueue') return send(404, { status: 'not found', message: 'Not Found' });
    switch (state.queue.shift() ?? state.mode) {
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'throttle':
        return send(
          429,
          { status: 'throttle event', message: 'Requests for this service are arriving too quickly.  Please retry later.' },
          state.retryAfter ? { 'retry-after': state.retryAfter } : {},
        );
      case 'error':
        record.status = 500;
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('Internal Server Error');
      case 'invalid':
        return send(400, invalid(['forced invalid event', ...state.extraErrors]));
      case 'accept': {
        const errors = validate(body);
        if (errors.length > 0) return send(400, invalid(errors));
        const event = body as Record<string, unknown>;
        const dedupKey = typeof event.dedup_key === 'string' && event.dedup_key !== '' ? event.dedup_key : randomKey();
        events.push(event);
        return send(202, { status: 'success', message: 'Event processed', dedup_key: dedupKey });
      }
    }
  }

  return {
    url: server.url,
    port: server.port,
    get connections() {
      return server.connections;
    },
    events,
    requests,
    get mode() {
      return state.mode;
    },
    set mode(m: PagerDutyMode) {
      state.mode = m;
    },
    get queue() {
      return state.queue;
    },
    set queue(q: PagerDutyMode[]) {
      state.queue = q;
    },
    get retryAfter() {
      return state.retryAfter;
    },
    set retryAfter(v: string | undefined) {
      state.retryAfter = v;
    },
    get extraErrors() {
      return state.extraErrors;
    },
    set extraErrors(v: string[]) {
      state.extraErrors = v;
    },
    async close() {
      for (const res of hanging) res.destroy();
      await server.close();
    },
  };
}

function invalid(errors: string[]) {
  return { status: 'invalid event', message: 'Event object is invalid', errors };
}

function randomKey(): string {
  return Math.random().toString(16).slice(2).padEnd(32, '0');
}

const blank = (v: unknown) => typeof v !== 'string' || v.trim() === '';

/** PagerDuty's checks, in its wording. */
function validate(body: unknown): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return ['Event object must be a JSON object'];
  const e = body as Record<string, unknown>;
  const errors: string[] = [];
  if (blank(e.routing_key)) errors.push("'routing_key' is missing or blank");
  else if ((e.routing_key as string).length !== 32) errors.push("'routing_key' is invalid");
  if (!ACTIONS.includes(e.event_action as string)) {
    errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')");
  }
  if (e.dedup_key !== undefined && typeof e.dedup_key !== 'string') errors.push("'dedup_key' must be a string");
  if (typeof e.dedup_key === 'string' && e.dedup_key.length > 255) errors.push("'dedup_key' must be at most 255 characters");
  if (e.event_action !== 'trigger') {
    if (blank(e.dedup_key)) errors.push("'dedup_key' is missing or blank");
    return errors;
  }
  const p = e.payload as Record<string, unknown> | undefined;
  if (p === null || typeof p !== 'object') return [...errors, "'payload' is missing or blank"];
  if (blank(p.summary)) errors.push("'payload.summary' is missing or blank");
  else if ((p.summary as string).length > 1024) errors.push("'payload.summary' must be at most 1024 characters");
  if (blank(p.source)) errors.push("'payload.source' is missing or blank");
  if (!SEVERITIES.includes(p.severity as string)) {
    errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')");
  }
  if (p.timestamp !== undefined && (typeof p.timestamp !== 'string' || !Number.isFinite(Date.parse(p.timestamp)))) {
    errors.push("'payload.timestamp' is invalid");
  }
  if (p.custom_details !== undefined && (p.custom_details === null || typeof p.custom_details !== 'object')) {
    errors.push("'payload.custom_details' must be an object");
  }
  if (e.links !== undefined) {
    if (!Array.isArray(e.links)) errors.push("'links' must be an array");
    else
      for (const [i, l] of e.links.entries())
        if (blank((l as { href?: unknown })?.href)) errors.push(`'links[${i}].href' is missing or blank`);
  }
  return errors;
}
