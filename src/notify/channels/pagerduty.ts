import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { Agent, type Dispatcher, request } from 'undici';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf, isJsonObject } from '../../lib/fields.js';
import { render } from '../message.js';
import { cut, hostOf, isAbsoluteHttp, parseRetryAfter, readCapped } from '../provider-http.js';
import { type Channel, DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

const schema = Type.Object(
  {
    /** The Events API v2 integration key of the PagerDuty service (or event orchestration). */
    routingKey: Type.String({
      minLength: 1,
      expected: 'a PagerDuty Events API v2 integration key, best read from an environment variable',
    }),
    /** Events API base URL; EU accounts use https://events.eu.pagerduty.com. */
    url: Type.String({
      pattern: '^https?://[^\\s]+$',
      default: 'https://events.pagerduty.com',
      expected: 'the Events API base URL, e.g. https://events.pagerduty.com or https://events.eu.pagerduty.com',
    }),
  },
  { additionalProperties: false },
);

/** The `pagerduty` channel's fields in `channels:`. */
export type PagerDutyConfig = Static<typeof schema>;

/** Limits of the Events API v2: longer values make PagerDuty reject the whole event with a 400. */
export const MAX_DEDUP_KEY = 255;
export const MAX_SUMMARY = 1024;

type EventAction = 'trigger' | 'acknowledge' | 'resolve';

/** One Events API v2 event as posted to `/v2/enqueue`. */
interface PagerDutyEvent {
  routing_key: string;
  event_action: EventAction;
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, string>;
  };
  links?: Array<{ href: string; text: string }>;
  client?: string;
  client_url?: string;
}

export const pagerduty = defineChannel({
  schema,
  person: { field: 'pagerduty' },
  keepsOnCall: true,
  create(name, config): Channel {
    const endpoint = `${config.url.replace(/\/+$/, '')}/v2/enqueue`;
    const host = hostOf(config.url);
    // The send signal is the real deadline; these only bound a peer that trickles bytes forever.
    const agent = new Agent({ connections: 8, headersTimeout: 30_000, bodyTimeout: 30_000, connect: { timeout: 10_000 } });
    const hide = (text: string) => text.split(config.routingKey).join('<secret>');

    async function post(event: PagerDutyEvent, ctx: SendContext): Promise<string> {
      let res: Dispatcher.ResponseData;
      let body: string;
      try {
        res = await request(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(event),
          signal: ctx.signal,
          dispatcher: agent,
        });
        body = await readCapped(res.body);
      } catch (err) {
        throw networkError(err, host, event.event_action, ctx.signal, hide);
      }
      const answer = parseAnswer(body);
      if (res.statusCode >= 200 && res.statusCode < 300) {
        ctx.logger.debug(
          { channel: name, action: event.event_action, dedupKey: event.dedup_key, status: res.statusCode },
          'pagerduty event accepted',
        );
        return typeof answer.dedup_key === 'string' && answer.dedup_key.length > 0 ? answer.dedup_key : event.dedup_key;
      }
      throw statusError(res, answer, body, event.event_action, endpoint, ctx.clock.now(), hide);
    }

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const now = ctx.clock.now();
        const key = dedupKeyFor(n.dedupKey);
        switch (n.action) {
          case 'trigger':
          // PagerDuty folds a trigger with an open incident's dedup_key into that incident's alert log.
          case 'remind':
            return { ref: { dedup_key: await post(triggerEvent(n, key, config.routingKey, now), ctx) } };
          case 'acknowledge':
          case 'resolve':
            return { ref: { dedup_key: await post({ routing_key: config.routingKey, event_action: n.action, dedup_key: key }, ctx) } };
          case 'test': {
            // A key of its own, so a test can never resolve a real incident that shares the notification's key.
            const testKey = dedupKeyFor(`vigil-test:${n.dedupKey}:${n.id}`);
            const event = triggerEvent(n, testKey, config.routingKey, now);
            if (event.payload) event.payload.severity = 'info';
            await post(event, ctx);
            // Resolved at once so a weekly test leaves no open incident behind; a retry repeats both, and PagerDuty deduplicates.
            await post({ routing_key: config.routingKey, event_action: 'resolve', dedup_key: testKey }, ctx);
            return { ref: { dedup_key: testKey } };
          }
        }
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/**
 * The incident's key as PagerDuty's `dedup_key`: unchanged up to 255 characters; a longer one is cut
 * and suffixed with a hash of the whole key, so it stays unique and is the same on every send.
 */
export function dedupKeyFor(key: string): string {
  if (key.length <= MAX_DEDUP_KEY) return key;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return `${cut(key, MAX_DEDUP_KEY - hash.length - 1, '')}~${hash}`;
}

function triggerEvent(n: Notification, dedupKey: string, routingKey: string, now: number): PagerDutyEvent {
  const i = n.incident;
  const message = render(n, now);
  const summary = n.action === 'test' ? message.title : i.summary || message.title;
  const links = [{ href: n.links.incident, text: `Incident ${i.key} in vigil` }];
  if (n.links.runbook) links.push({ href: n.links.runbook, text: 'Runbook' });
  if (n.links.dashboard) links.push({ href: n.links.dashboard, text: 'Dashboard' });
  if (n.links.screenshot) links.push({ href: n.links.screenshot, text: 'Screenshot' });
  const absolute = links.filter((l) => isAbsoluteHttp(l.href));
  const event: PagerDutyEvent = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: cut(summary.replace(/\s+/g, ' ').trim(), MAX_SUMMARY, '…'),
      source: i.probeId || 'vigil',
      severity: i.severity,
      timestamp: new Date(n.createdAt).toISOString(),
      component: i.kind || undefined,
      group: i.labels.team || undefined,
      class: i.rule || undefined,
      custom_details: Object.fromEntries(message.facts),
    },
    client: 'vigil',
  };
  // PagerDuty rejects the whole event for a link that is not an absolute URL; a page matters more than a link.
  if (absolute.length > 0) event.links = absolute;
  const clientUrl = [n.links.dashboard, n.links.incident].find((u) => u !== undefined && isAbsoluteHttp(u));
  if (clientUrl) event.client_url = clientUrl;
  return event;
}

function statusError(
  res: Dispatcher.ResponseData,
  answer: PagerDutyAnswer,
  body: string,
  action: EventAction,
  endpoint: string,
  now: number,
  hide: (text: string) => string,
): DeliveryError {
  const status = res.statusCode;
  const said = hide(describeAnswer(answer, body));
  if (status === 400) {
    return new DeliveryError(`PagerDuty rejected the ${action} event (400${said ? `: ${said}` : ''})`, { retryable: false });
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now);
    return new DeliveryError(
      `PagerDuty is throttling events for this routing key (429${said ? `: ${said}` : ''}); it accepts about 120 events a minute per key`,
      retryAfterMs === undefined ? { retryable: true } : { retryable: true, retryAfterMs },
    );
  }
  if (status >= 500 || status === 408) {
    return new DeliveryError(`PagerDuty answered ${status} to the ${action} event${said ? `: ${said}` : ''}`, { retryable: true });
  }
  // A redirect, 401, 403 or 404 means the channel points at the wrong place: sending again cannot help.
  return new DeliveryError(`PagerDuty answered ${status} at ${endpoint}${said ? `: ${said}` : ''} (check the channel's url)`, {
    retryable: false,
  });
}

function networkError(err: unknown, host: string, action: EventAction, signal: AbortSignal, hide: (text: string) => string): DeliveryError {
  if (signal.aborted) {
    return new DeliveryError(`PagerDuty at ${host} did not take the ${action} event before the send deadline`, { retryable: true });
  }
  const cause = fieldOf(err, 'cause');
  const code = codeOf(cause) || codeOf(err);
  const causeMessage = fieldOf(cause, 'message');
  const detail = hide(typeof causeMessage === 'string' ? causeMessage : messageOf(err));
  return new DeliveryError(`cannot reach PagerDuty at ${host}: ${detail}${code && !detail.includes(code) ? ` [${code}]` : ''}`, {
    retryable: true,
  });
}

/** The fields of PagerDuty's JSON answer that matter. */
interface PagerDutyAnswer {
  status?: unknown;
  message?: unknown;
  errors?: unknown;
  dedup_key?: unknown;
}

function parseAnswer(body: string): PagerDutyAnswer {
  try {
    const v: unknown = JSON.parse(body);
    return isJsonObject(v) ? v : {};
  } catch {
    return {};
  }
}

/** PagerDuty's own words (`invalid event: Event object is invalid: 'payload.summary' is missing`), or the start of a non-JSON body. */
function describeAnswer(answer: PagerDutyAnswer, body: string): string {
  const parts: string[] = [];
  if (typeof answer.status === 'string' && answer.status !== 'success') parts.push(answer.status);
  if (typeof answer.message === 'string') parts.push(answer.message);
  if (Array.isArray(answer.errors)) parts.push(answer.errors.map(String).join('; '));
  if (parts.length > 0) return cut(parts.filter(Boolean).join(': '), 500, '…');
  const text = body.replace(/\s+/g, ' ').trim();
  return cut(text, 200, '…');
}
