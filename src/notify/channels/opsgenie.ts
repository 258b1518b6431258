import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { Agent, type Dispatcher, request } from 'undici';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf, isJsonObject } from '../../lib/fields.js';
import { createRedactor } from '../../lib/redactor.js';
import { render } from '../message.js';
import { cut, hostOf, jsonObjectOf, parseRetryAfter, readCapped } from '../provider-http.js';
import {
  type Channel,
  DeliveryError,
  defineChannel,
  type Notification,
  type SendContext,
  type SendResult,
  type Severity,
} from '../types.js';

const priority = (fallback: string) =>
  Type.Union([Type.Literal('P1'), Type.Literal('P2'), Type.Literal('P3'), Type.Literal('P4'), Type.Literal('P5')], {
    default: fallback,
    expected: 'an Opsgenie priority: P1, P2, P3, P4 or P5',
  });

const Named = Type.Union([Type.Literal('team'), Type.Literal('escalation'), Type.Literal('schedule')]);
const Responder = Type.Union(
  [
    Type.Object({ type: Named, name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    Type.Object(
      {
        type: Type.Union([Type.Literal('team'), Type.Literal('user'), Type.Literal('escalation'), Type.Literal('schedule')]),
        id: Type.String({ minLength: 1 }),
      },
      { additionalProperties: false },
    ),
    Type.Object({ type: Type.Literal('user'), username: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  ],
  {
    expected:
      'a responder: { type: team, name: ops }, { type: user, username: alice@example.com }, { type: escalation|schedule, name: … } or { type: team|user|escalation|schedule, id: … }',
  },
);

const schema = Type.Object(
  {
    /** An API key of an Opsgenie "API" integration (Create and Update access). */
    apiKey: Type.String({ minLength: 1, expected: 'an Opsgenie API integration key, best read from an environment variable' }),
    /** The account's region: where its API lives. */
    region: Type.Union([Type.Literal('us'), Type.Literal('eu')], { default: 'us', expected: 'us or eu' }),
    /** Replaces the region's base URL: a proxy or a test server. */
    apiUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' })),
    /** Who Opsgenie notifies for the channel's own pages; absent, the integration's team and rules decide. */
    responders: Type.Optional(Type.Array(Responder, { maxItems: 50, expected: 'a list of at most 50 responders' })),
    /** Tags on every alert. */
    tags: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 50 }), {
        maxItems: 20,
        expected: 'a list of at most 20 tags of 1 to 50 characters',
      }),
    ),
    /** vigil severity → Opsgenie priority. */
    priorityMap: Type.Object(
      {
        critical: priority('P1'),
        error: priority('P2'),
        warning: priority('P3'),
        info: priority('P4'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The `opsgenie` channel's fields in `channels:`. */
export type OpsgenieConfig = Static<typeof schema>;

/** Opsgenie's documented limits: longer values are cut by Opsgenie or reject the request. */
export const LIMITS = { message: 130, alias: 512, description: 15_000, detailValue: 500, note: 25_000, user: 100 } as const;
const BASE_URLS = { us: 'https://api.opsgenie.com', eu: 'https://api.eu.opsgenie.com' } as const;
// How often a test page asks whether Opsgenie has processed its alert; the send's deadline bounds the asking.
const STATUS_POLL_MS = 500;

type Step = 'create' | 'acknowledge' | 'close' | 'request status';

/** What Opsgenie's API answered: status, parsed body, and the raw text for a non-JSON page. */
interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Dispatcher.ResponseData['headers'];
}

export const opsgenie = defineChannel({
  schema,
  person: { field: 'opsgenie' },
  // Opsgenie keeps schedules and rotations: with no schedule in vigil the scorecard asks to attest them, not fails.
  keepsOnCall: true,
  create(name, config): Channel {
    const base = (config.apiUrl ?? BASE_URLS[config.region]).replace(/\/+$/, '');
    const host = hostOf(base);
    const agent = new Agent({ connections: 8, headersTimeout: 30_000, bodyTimeout: 30_000, connect: { timeout: 10_000 } });
    // Every form of the key (as is, encoded, cut short): a proxy or Opsgenie may quote the header back.
    const hide = createRedactor([config.apiKey]).text;
    const priorities: Record<Severity, string> = config.priorityMap;

    async function call(method: 'GET' | 'POST', path: string, body: unknown, step: Step, ctx: SendContext): Promise<Answer> {
      try {
        const res = await request(`${base}${path}`, {
          method,
          headers: { authorization: `GenieKey ${config.apiKey}`, accept: 'application/json', 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: ctx.signal,
          dispatcher: agent,
        });
        const text = await readCapped(res.body);
        return { status: res.statusCode, body: jsonObjectOf(text), text, headers: res.headers };
      } catch (err) {
        throw networkError(err, host, step, ctx.signal, hide);
      }
    }

    /** Creates (or, for an open alias, deduplicates into) an alert; returns Opsgenie's request id. */
    async function createAlert(payload: AlertPayload, ctx: SendContext): Promise<string | undefined> {
      const answer = await call('POST', '/v2/alerts', payload, 'create', ctx);
      if (answer.status < 200 || answer.status >= 300) throw statusError(answer, 'create', base, ctx.clock.now(), hide);
      ctx.logger.debug({ channel: name, alias: payload.alias, requestId: answer.body.requestId }, 'opsgenie alert accepted');
      return typeof answer.body.requestId === 'string' ? answer.body.requestId : undefined;
    }

    /** Acknowledges or closes the alert of `alias`; an alias Opsgenie does not know is logged and counts as done. */
    async function act(step: 'acknowledge' | 'close', alias: string, body: ActionBody, ctx: SendContext): Promise<void> {
      const answer = await call('POST', `/v2/alerts/${encodeURIComponent(alias)}/${step}?identifierType=alias`, body, step, ctx);
      if (answer.status === 404) {
        // Deleted in Opsgenie, or never created (its create failed there after a 202): nothing left to act on.
        ctx.logger.warn({ channel: name, alias, step, said: hide(describe(answer)) }, 'opsgenie alert not found; nothing to update');
        return;
      }
      if (answer.status < 200 || answer.status >= 300) throw statusError(answer, step, base, ctx.clock.now(), hide);
      ctx.logger.debug({ channel: name, alias, step, requestId: answer.body.requestId }, 'opsgenie action accepted');
    }

    /**
     * Waits until Opsgenie has processed request `id` (a 202 only means queued), so a test page can
     * tell a working channel from one whose alerts Opsgenie drops later (an unknown responder).
     */
    async function processed(id: string, ctx: SendContext): Promise<void> {
      for (;;) {
        const answer = await call('GET', `/v2/alerts/requests/${encodeURIComponent(id)}`, undefined, 'request status', ctx);
        const data = answer.body.data;
        if (answer.status === 200 && isJsonObject(data)) {
          if (data.isSuccess === true) return;
          const status = typeof data.status === 'string' ? hide(cut(data.status, 300, '')) : 'no reason given';
          throw new DeliveryError(`Opsgenie accepted the test alert but could not process it: ${status}`, { retryable: false });
        }
        // 404: not processed yet. Anything else is an answer the channel cannot read, and not worth a retry storm.
        if (answer.status !== 404) throw statusError(answer, 'request status', base, ctx.clock.now(), hide);
        try {
          await ctx.clock.sleep(STATUS_POLL_MS, ctx.signal);
        } catch {
          throw new DeliveryError(`Opsgenie at ${host} had not processed the test alert before the send deadline`, { retryable: true });
        }
      }
    }

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const alias = n.ref?.alias || aliasFor(n.dedupKey, n.recipient?.id);
        const note = () => cut(render(n, ctx.clock.now()).title, LIMITS.note, '');
        switch (n.action) {
          case 'trigger':
          // Re-created, not a note: Opsgenie folds it into the open alert of that alias (its count goes up),
          // a retry cannot add a second copy, and an alert someone closed in Opsgenie opens again.
          case 'remind':
            await createAlert(alertPayload(n, alias, priorities[n.incident.severity], config, ctx.clock.now()), ctx);
            return { ref: { alias } };
          case 'acknowledge': {
            const body: ActionBody = { source: 'vigil', note: note() };
            if (n.incident.ackedBy) body.user = cut(n.incident.ackedBy, LIMITS.user, '');
            await act('acknowledge', alias, body, ctx);
            return { ref: { alias } };
          }
          case 'resolve':
            await act('close', alias, { source: 'vigil', note: note() }, ctx);
            return { ref: { alias } };
          case 'test': {
            // An alias of its own, so a test can never close a real incident's alert.
            const testAlias = aliasFor(`vigil-test:${n.dedupKey}:${n.id}`);
            const payload = alertPayload(n, testAlias, 'P5', config, ctx.clock.now());
            // Opsgenie takes at most 20 tags: the marker replaces the last configured one if need be.
            payload.tags = [...(payload.tags ?? []).slice(0, 19), 'vigil-test'];
            const requestId = await createAlert(payload, ctx);
            // Closed only once created: Opsgenie works through requests asynchronously.
            if (requestId !== undefined) await processed(requestId, ctx);
            await act('close', testAlias, { source: 'vigil', note: 'vigil test page: closed by vigil' }, ctx);
            return { ref: { alias: testAlias } };
          }
        }
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** The body of an acknowledge or close request. */
interface ActionBody {
  user?: string;
  source: string;
  note: string;
}

/** One alert as posted to `/v2/alerts`. */
interface AlertPayload {
  message: string;
  alias: string;
  description: string;
  responders?: Array<Record<string, string>>;
  tags?: string[];
  details: Record<string, string>;
  entity: string;
  source: string;
  priority: string;
}

function alertPayload(n: Notification, alias: string, priority: string, config: OpsgenieConfig, now: number): AlertPayload {
  const i = n.incident;
  const message = render(n, now);
  const title = n.action === 'trigger' ? i.summary || message.title : message.title;
  const details: Record<string, string> = {};
  for (const [label, value] of message.facts) details[label] = cut(value, LIMITS.detailValue, '…');
  details.Incident = n.links.incident;
  if (n.links.runbook) details.Runbook = n.links.runbook;
  if (n.links.dashboard) details.Dashboard = n.links.dashboard;
  if (n.links.screenshot) details.Screenshot = n.links.screenshot;
  details['Incident key'] = n.dedupKey;
  // A person paged by escalation is the alert's only responder: the channel's own responders were paged in their own step.
  const responders = n.recipient?.opsgenie ? [{ type: 'user', username: n.recipient.opsgenie }] : config.responders;
  return {
    message: cut(title.replace(/\s+/g, ' ').trim(), LIMITS.message, '…'),
    alias,
    description: cut(message.text, LIMITS.description, '…'),
    ...(responders && responders.length > 0 ? { responders: responders.map((r) => ({ ...r })) } : {}),
    ...(config.tags && config.tags.length > 0 ? { tags: [...config.tags] } : {}),
    details,
    entity: cut(i.probeId || 'vigil', LIMITS.alias, ''),
    source: 'vigil',
    priority,
  };
}

/**
 * The alert alias: the incident key, and for a person's page the key plus their id, so their alert
 * is not folded into the channel's own (Opsgenie would count it and notify nobody new). Over 512
 * characters it is cut and suffixed with a hash of the whole, the same on every send.
 */
export function aliasFor(key: string, person?: string): string {
  const alias = person === undefined ? key : `${key}:${person}`;
  if (alias.length <= LIMITS.alias) return alias;
  const hash = createHash('sha256').update(alias).digest('hex').slice(0, 32);
  return `${cut(alias, LIMITS.alias - hash.length - 1, '')}~${hash}`;
}

function statusError(answer: Answer, step: Step, base: string, now: number, hide: (text: string) => string): DeliveryError {
  const { status } = answer;
  const said = hide(describe(answer));
  const tail = said ? `: ${said}` : '';
  if (status === 400 || status === 422) {
    return new DeliveryError(`Opsgenie rejected the ${step} request (${status}${tail})`, { retryable: false });
  }
  if (status === 401 || status === 403) {
    return new DeliveryError(
      `Opsgenie refused the API key (${status}${tail}): check apiKey, its integration's access rights, and the region`,
      { retryable: false },
    );
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], now);
    return new DeliveryError(
      `Opsgenie is rate-limiting this account (429${tail})`,
      retryAfterMs === undefined ? { retryable: true } : { retryable: true, retryAfterMs },
    );
  }
  if (status >= 500 || status === 408) {
    return new DeliveryError(`Opsgenie answered ${status} to the ${step} request${tail}`, { retryable: true });
  }
  // A redirect or a 404 on create: the channel points at the wrong place, sending again cannot help.
  return new DeliveryError(`Opsgenie answered ${status} to the ${step} request at ${hostOf(base)}${tail} (check region and apiUrl)`, {
    retryable: false,
  });
}

function networkError(err: unknown, host: string, step: Step, signal: AbortSignal, hide: (text: string) => string): DeliveryError {
  if (signal.aborted) {
    return new DeliveryError(`Opsgenie at ${host} did not answer the ${step} request before the send deadline`, { retryable: true });
  }
  const cause = fieldOf(err, 'cause');
  const code = codeOf(cause) || codeOf(err);
  const causeMessage = fieldOf(cause, 'message');
  const detail = hide(typeof causeMessage === 'string' ? causeMessage : messageOf(err));
  return new DeliveryError(`cannot reach Opsgenie at ${host}: ${detail}${code && !detail.includes(code) ? ` [${code}]` : ''}`, {
    retryable: true,
  });
}

/** Opsgenie's own words (`Request body is not processable. Please check the errors.: message: Message can not be empty.`), or the start of a non-JSON body. */
function describe(answer: Answer): string {
  const { message, errors } = answer.body;
  const parts: string[] = [];
  if (typeof message === 'string') parts.push(message);
  if (isJsonObject(errors))
    parts.push(
      Object.entries(errors)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join('; '),
    );
  if (parts.length > 0) return cut(parts.filter(Boolean).join(': '), 500, '…');
  return cut(answer.text.replace(/\s+/g, ' ').trim(), 200, '…');
}
