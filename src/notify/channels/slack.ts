import { AsyncLocalStorage } from 'node:async_hooks';
import { type Static, Type } from '@sinclair/typebox';
import { ErrorCode, type KnownBlock, LogLevel, type Logger as SlackLogger, WebClient } from '@slack/web-api';
import { Agent, fetch } from 'undici';
import { untilAborted } from '../../lib/abort.js';
import { formatDuration } from '../../lib/duration.js';
import { codeOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';
import type { Logger } from '../../lib/logger.js';
import { createRedactor, MIN_SECRET_LENGTH, type Redactor } from '../../lib/redactor.js';
import { type Message, render } from '../message.js';
import { callJson, cut, excerpt, type JsonAnswer, parseRetryAfter } from '../provider-http.js';
import {
  type Channel,
  type ChannelDeps,
  DeliveryError,
  defineChannel,
  type Notification,
  type SendContext,
  type SendResult,
} from '../types.js';

const schema = Type.Object(
  {
    /** Bot mode: a bot token with `chat:write`. Set with `channel`, or set `webhookUrl` instead. */
    token: Type.Optional(Type.String({ minLength: 1, expected: 'a Slack bot token (xoxb-…), from ${SLACK_BOT_TOKEN} or ${file:…}' })),
    /** Bot mode: where new messages go, a channel name or id. Updates and thread replies follow the id Slack returned. */
    channel: Type.Optional(
      Type.String({
        pattern: '^(#?[a-z0-9][a-z0-9._-]*|[A-Z][A-Z0-9]{2,})$',
        expected: 'a channel name like #ops-alerts or a channel id like C0123456789',
      }),
    ),
    /**
     * Incoming-webhook mode: the webhook's URL, a secret (whoever has it can post). Every notification
     * is a new message in the webhook's own channel: a webhook cannot edit one.
     */
    webhookUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]+$',
        expected: 'a Slack incoming-webhook URL (https://hooks.slack.com/services/…), from ${SLACK_WEBHOOK_URL} or ${file:…}',
      }),
    ),
    /** Slack's Web API base; changed only for a proxy or a test server. */
    apiUrl: Type.String({ default: 'https://slack.com/api/', pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }),
    /**
     * Acknowledge/Resolve buttons act in Slack itself (the app's Interactivity Request URL points at
     * vigil's /slack/actions); otherwise they open vigil's signed links in a browser.
     */
    interactive: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

/** A `slack` channel's config, defaults applied. */
export type SlackConfig = Static<typeof schema>;

/**
 * The client's own deadline, a backstop only: the worker's per-send signal normally ends a call first.
 * Kept above the default delivery timeout so a longer configured one is not cut short here.
 */
const CLIENT_TIMEOUT_MS = 30_000;

/** Slack's `ok:false` codes that mean "try again later"; every other code will fail the same way again. */
const RETRYABLE_CODES = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable']);

/** What to do about the codes a misconfigured channel gets. */
const HINTS: Record<string, string> = {
  channel_not_found: 'check `channel`, and invite the app to a private channel',
  not_in_channel: 'invite the app to the channel',
  is_archived: 'the channel is archived; pick another',
  invalid_auth: 'check `token`',
  not_authed: 'check `token`',
  token_revoked: 'the token was revoked; install the app again and update `token`',
  token_expired: 'the token expired; update `token`',
  account_inactive: 'the token belongs to a deactivated app or user; update `token`',
  missing_scope: 'the token needs the chat:write scope',
  restricted_action: 'a workspace setting prevents the app from posting in this channel',
};

/** Slack's layout limits (characters): longer texts are rejected, so they are cut here. */
const LIMITS = { header: 150, section: 3000, field: 2000, fallback: 4000, fields: 10 };

const EMOJI = {
  critical: ':red_circle:',
  error: ':large_orange_circle:',
  warning: ':large_yellow_circle:',
  info: ':large_blue_circle:',
  acknowledge: ':eyes:',
  resolve: ':large_green_circle:',
  test: ':white_check_mark:',
} as const;

/** The message a notification of an incident posted; acknowledge, resolve and remind act on it. */
interface SlackRef {
  channel: string;
  ts: string;
}

interface Content {
  text: string;
  blocks: KnownBlock[];
}

export const slack = defineChannel({
  schema,
  person: { field: 'slack' },
  check(config) {
    const bot = config.token !== undefined || config.channel !== undefined;
    if (config.webhookUrl !== undefined) {
      if (!bot) return [];
      const extra = (['token', 'channel'] as const).filter((k) => config[k] !== undefined);
      const also = `${extra.join(' and ')} ${extra.length > 1 ? 'are' : 'is'} set too`;
      return [
        {
          path: 'webhookUrl',
          message: `expected either webhookUrl (incoming-webhook mode) or token and channel (bot mode), got both (${also})`,
        },
      ];
    }
    const missing = (['token', 'channel'] as const).filter((k) => config[k] === undefined);
    return missing.map((k) => ({
      path: k,
      message: `expected ${k === 'token' ? 'a Slack bot token' : 'a channel name or id'} with ${k === 'token' ? 'channel' : 'token'} (bot mode), or webhookUrl alone (incoming-webhook mode); it is missing`,
    }));
  },
  create(name, config, deps) {
    if (config.webhookUrl !== undefined) return incomingWebhook(name, config.webhookUrl, config.interactive === true, deps);
    const { token, channel } = config;
    // The config check guarantees both; a caller that skipped it gets told here, not at the first send.
    if (token === undefined || channel === undefined) throw new TypeError(`slack channel ${name}: bot mode needs token and channel`);
    const log = deps.logger.child({ channel: name, type: 'slack' });
    // One pool per channel, so close() releases exactly what this channel opened.
    const agent = new Agent({ connect: { timeout: 10_000 } });
    // WebClient calls take no signal of their own: the send's deadline reaches its fetch through this context.
    const deadline = new AsyncLocalStorage<AbortSignal>();
    const client = new WebClient(token, {
      slackApiUrl: config.apiUrl,
      // The outbox worker owns retries and Retry-After; the client must fail fast and say why.
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: CLIENT_TIMEOUT_MS,
      logger: slackLogger(log, token),
      fetch: (url, init) => {
        const send = deadline.getStore();
        const signal = send && init?.signal ? AbortSignal.any([init.signal, send]) : (send ?? init?.signal);
        // Only chat methods are called: bodies are form-encoded strings, never the file-upload FormData.
        const body = init?.body ?? undefined;
        if (body !== undefined && typeof body !== 'string') {
          return Promise.reject(new TypeError('the Slack channel sends form-encoded text only, not a file upload'));
        }
        return fetch(url, { ...init, body, signal, dispatcher: agent });
      },
    });

    // `to`: the channel's own target, or a person's user id when escalation pages them (a direct message).
    const post = async (content: Content, thread?: SlackRef, to: string = channel): Promise<SlackRef> => {
      const res = await client.chat.postMessage({
        channel: thread?.channel ?? to,
        ...(thread ? { thread_ts: thread.ts } : {}),
        ...content,
        // An incident link would otherwise unfold into a preview of raw JSON.
        unfurl_links: false,
        unfurl_media: false,
      });
      if (typeof res.channel !== 'string' || typeof res.ts !== 'string') {
        throw new DeliveryError('Slack accepted chat.postMessage but returned no channel and ts', { retryable: false });
      }
      return { channel: res.channel, ts: res.ts };
    };

    const update = async (content: Content, ref: SlackRef, ctx: SendContext): Promise<SlackRef> => {
      try {
        const res = await client.chat.update({ channel: ref.channel, ts: ref.ts, ...content });
        return { channel: typeof res.channel === 'string' ? res.channel : ref.channel, ts: typeof res.ts === 'string' ? res.ts : ref.ts };
      } catch (err) {
        // Someone deleted the original: announcing the new state in a fresh message beats never announcing it.
        if (slackCode(err) !== 'message_not_found') throw err;
        ctx.logger.warn({ channel: name, ts: ref.ts }, 'slack message to update is gone; posting a new one');
        return post(content, undefined, ref.channel);
      }
    };

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const started = ctx.clock.now();
        const content = compose(n, render(n, started), config.interactive === true);
        const ref = parseRef(n.ref);
        const followsRef = ref !== undefined && n.action !== 'trigger' && n.action !== 'test';
        const method = followsRef && n.action !== 'remind' ? 'chat.update' : 'chat.postMessage';
        try {
          const result = await deadline.run(ctx.signal, () =>
            untilAborted(ctx.signal, async (): Promise<SlackRef> => {
              if (ref === undefined) return post(content, undefined, n.recipient?.slack);
              if (n.action === 'acknowledge' || n.action === 'resolve') return update(content, ref, ctx);
              if (n.action === 'remind') {
                await post(content, ref, n.recipient?.slack);
                // The thread's parent stays the message later updates must edit, not this reply.
                return ref;
              }
              return post(content, undefined, n.recipient?.slack);
            }),
          );
          return { ref: { channel: result.channel, ts: result.ts } };
        } catch (err) {
          throw classify(err, { method, target: followsRef ? ref.channel : channel, token, ctx, started });
        }
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** Incoming-webhook answers (plain text) that a changed config fixes, and what to change. */
const WEBHOOK_HINTS: Record<string, string> = {
  invalid_token: 'the webhook URL is wrong or was revoked; create a new one and update `webhookUrl`',
  no_service: 'the webhook was removed or its app uninstalled; create a new one and update `webhookUrl`',
  no_active_hooks: 'the webhook is disabled; enable it or create a new one',
  no_team: 'the workspace is gone or the URL is wrong; check `webhookUrl`',
  team_disabled: 'the workspace is disabled',
  channel_not_found: "the webhook's channel is gone; create a webhook for another channel",
  channel_is_archived: "the webhook's channel is archived; create a webhook for another channel",
  action_prohibited: 'a workspace admin restricted posting in this channel',
  posting_to_general_channel_denied: 'only admins may post in this channel',
};

/** A Slack member id as `people:` holds it; anything else is never put inside a `<@…>` mention. */
const MEMBER_ID = /^[UW][A-Z0-9]{2,}$/;

/**
 * Incoming-webhook mode: one plain POST per notification to a URL that posts into the channel the
 * webhook was made for. Slack answers `ok` and no message id, so nothing can be edited later:
 * acknowledge, resolve and remind each post a new message, and a person paged through it is
 * @-mentioned in that channel rather than sent a direct message.
 */
function incomingWebhook(name: string, webhookUrl: string, interactive: boolean, deps: ChannelDeps): Channel {
  const url = new URL(webhookUrl);
  // The last path segment is the webhook's secret; the whole URL carries it too.
  const secret = url.pathname.split('/').filter(Boolean).at(-1) ?? '';
  const redactor = createRedactor([webhookUrl, ...(secret.length >= MIN_SECRET_LENGTH ? [secret] : [])]);
  const where = `Slack incoming webhook POST to ${url.host}`;
  // Backstops only: the worker's per-send signal normally ends a request first.
  const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const log = deps.logger.child({ channel: name, type: 'slack', mode: 'webhook' });
  return {
    async send(n: Notification, ctx: SendContext): Promise<SendResult> {
      const started = ctx.clock.now();
      const content = compose(n, render(n, started), interactive);
      const person = n.recipient?.slack;
      if (person !== undefined && MEMBER_ID.test(person)) {
        // No direct message through a webhook: the mention in its channel is what notifies the person.
        content.text = `<@${person}> ${content.text}`;
        content.blocks.splice(1, 0, { type: 'section', text: { type: 'mrkdwn', text: `<@${person}> you are paged` } });
      }
      const answer = await callJson(
        String(url),
        { method: 'POST', body: { ...content, unfurl_links: false, unfurl_media: false }, agent, where, redactor },
        ctx,
      );
      if (answer.status >= 200 && answer.status < 300) {
        log.debug({ action: n.action, status: answer.status }, 'slack webhook accepted');
        return {};
      }
      throw webhookError(answer, where, redactor, ctx.clock.now());
    },
    async close() {
      await agent.close();
    },
  };
}

/** An incoming webhook's refusal: 429 and 5xx may pass, a 4xx code such as `no_service` will not. */
function webhookError(answer: JsonAnswer, where: string, redactor: Redactor, now: number): DeliveryError {
  const { status } = answer;
  const said = excerpt(redactor.text(answer.text), 100);
  const answered = `${where} answered ${status}${said ? `: ${said}` : ''}`;
  if (status === 429 || status === 408 || status >= 500) {
    const wait = parseRetryAfter(answer.retryAfter, now);
    const when = wait === undefined ? '' : `; Slack asks to retry after ${Math.ceil(wait / 1000)}s`;
    return new DeliveryError(`${answered}${when}`, { retryable: true, ...(wait === undefined ? {} : { retryAfterMs: wait }) });
  }
  const hint = Object.hasOwn(WEBHOOK_HINTS, said)
    ? WEBHOOK_HINTS[said]
    : status >= 300 && status < 400
      ? 'redirects are not followed'
      : undefined;
  return new DeliveryError(`${answered} (${hint ?? 'permanent, not retried'})`, { retryable: false });
}

/** Blocks for the message and the same words as plain text, for notifications and clients without blocks. */
function compose(n: Notification, msg: Message, interactive: boolean): Content {
  const emoji = n.action === 'trigger' || n.action === 'remind' ? EMOJI[n.incident.severity] : EMOJI[n.action];
  const header = `${emoji} ${msg.title}`;
  const blocks: KnownBlock[] = [{ type: 'header', text: { type: 'plain_text', text: cut(header, LIMITS.header), emoji: true } }];
  if (header.length > LIMITS.header)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(escapeMrkdwn(msg.title), LIMITS.section) } });

  // A long error reads badly squeezed into a two-column field: it gets a section of its own.
  const short = msg.facts.filter(([label]) => label !== 'Last error');
  const error = msg.facts.find(([label]) => label === 'Last error');
  blocks.push({
    type: 'section',
    fields: short
      .slice(0, LIMITS.fields)
      .map(([label, value]) => ({ type: 'mrkdwn', text: cut(`*${label}*\n${escapeMrkdwn(value)}`, LIMITS.field) })),
  });
  if (error)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(`*${error[0]}*\n${escapeMrkdwn(error[1])}`, LIMITS.section) } });

  const buttons = actionButtons(n, interactive);
  if (buttons) blocks.push(buttons);

  const links = [`<${escapeMrkdwn(n.links.incident)}|Incident>`];
  if (n.links.runbook) links.push(`<${escapeMrkdwn(n.links.runbook)}|Runbook>`);
  if (n.links.dashboard) links.push(`<${escapeMrkdwn(n.links.dashboard)}|Dashboard>`);
  if (n.links.screenshot) links.push(`<${escapeMrkdwn(n.links.screenshot)}|Screenshot>`);
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `${links.join(' · ')} · dedup \`${escapeMrkdwn(n.dedupKey)}\`` }] });

  return { text: cut(escapeMrkdwn(msg.text), LIMITS.fallback), blocks };
}

/**
 * Acknowledge and Resolve, on pages that still ask someone to act. An acknowledge or resolve edits
 * the original message, and the edit leaves these buttons out, so a settled incident shows none.
 */
function actionButtons(n: Notification, interactive: boolean): KnownBlock | undefined {
  const { ack, resolve } = n.links;
  if (!ack || !resolve || (n.action !== 'trigger' && n.action !== 'remind')) return undefined;
  const label = (text: string) => ({ type: 'plain_text' as const, text, emoji: false });
  if (interactive) {
    // No url on these: Slack would open it as well as post the click, acting twice.
    const value = String(n.incident.id);
    return {
      type: 'actions',
      elements: [
        { type: 'button', action_id: 'vigil_ack', text: label('Acknowledge'), value, style: 'primary' },
        { type: 'button', action_id: 'vigil_resolve', text: label('Resolve'), value },
      ],
    };
  }
  // Link buttons open a confirmation page (a GET acts on nothing); their own action ids keep the
  // click Slack may still post to an app with interactivity from being read as an interactive one.
  return {
    type: 'actions',
    elements: [
      { type: 'button', action_id: 'vigil_ack_link', text: label('Acknowledge'), url: ack, style: 'primary' },
      { type: 'button', action_id: 'vigil_resolve_link', text: label('Resolve'), url: resolve },
    ],
  };
}

/** Turns whatever the client threw into a DeliveryError that says whether a retry can help. */
function classify(err: unknown, at: { method: string; target: string; token: string; ctx: SendContext; started: number }): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const data = fieldOf(err, 'data');
  const where = `Slack ${at.method} to ${at.target}`;
  const clean = (text: string) => scrub(text, at.token);

  if (at.ctx.signal.aborted) {
    return new DeliveryError(`${where} timed out after ${formatDuration(at.ctx.clock.now() - at.started)}`, {
      retryable: true,
      cause: err,
    });
  }
  switch (codeOf(err)) {
    case ErrorCode.PlatformError: {
      const code = clean(String(fieldOf(data, 'error') ?? 'unknown_error')).slice(0, 100);
      const retryable = RETRYABLE_CODES.has(code);
      const scope = fieldOf(data, 'needed');
      const needed = code === 'missing_scope' && typeof scope === 'string' ? ` (needs ${clean(scope)})` : '';
      const hint = HINTS[code] ? `: ${HINTS[code]}` : retryable ? '' : ' (permanent, not retried)';
      const retryAfter = fieldOf(fieldOf(data, 'response_metadata'), 'retryAfter');
      return new DeliveryError(`${where} failed: ${code}${needed}${hint}`, {
        retryable,
        ...(retryable && typeof retryAfter === 'number' ? { retryAfterMs: retryAfter * 1000 } : {}),
        cause: err,
      });
    }
    case ErrorCode.RateLimitedError: {
      const seconds = fieldOf(err, 'retryAfter');
      const when = typeof seconds === 'number' ? `; Slack asks to retry after ${seconds}s` : '';
      return new DeliveryError(`${where} was rate-limited (HTTP 429)${when}`, {
        retryable: true,
        ...(typeof seconds === 'number' ? { retryAfterMs: seconds * 1000 } : {}),
        cause: err,
      });
    }
    case ErrorCode.HTTPError: {
      const statusCode = fieldOf(err, 'statusCode');
      const status = typeof statusCode === 'number' ? statusCode : 0;
      const retryable = status === 408 || status === 425 || status >= 500;
      const hint = status === 404 ? ' (check `apiUrl`)' : '';
      return new DeliveryError(`${where} answered HTTP ${status}${hint}`, { retryable, cause: err });
    }
    case ErrorCode.RequestError: {
      const original = fieldOf(err, 'original');
      if (fieldOf(original, 'name') === 'TimeoutError') {
        return new DeliveryError(`${where} timed out after ${formatDuration(CLIENT_TIMEOUT_MS)}`, { retryable: true, cause: err });
      }
      const code = codeOf(fieldOf(original, 'cause')) || codeOf(original);
      const message = fieldOf(original, 'message');
      const why = code || (typeof message === 'string' ? message : 'request failed');
      return new DeliveryError(`${where} could not reach Slack: ${clean(why)}`, { retryable: true, cause: err });
    }
  }
  // Anything else (a malformed 429, a client bug) may pass; the worker's maximum age bounds the retries.
  const text = err instanceof Error ? err.message : String(err);
  return new DeliveryError(`${where} failed: ${clean(text).slice(0, 200)}`, { retryable: true, cause: err });
}

function slackCode(err: unknown): string | undefined {
  const error = fieldOf(fieldOf(err, 'data'), 'error');
  return codeOf(err) === ErrorCode.PlatformError && typeof error === 'string' ? error : undefined;
}

function parseRef(ref: Record<string, string> | undefined): SlackRef | undefined {
  return ref && typeof ref.channel === 'string' && ref.channel !== '' && typeof ref.ts === 'string' && ref.ts !== ''
    ? { channel: ref.channel, ts: ref.ts }
    : undefined;
}

/** Slack reads `&`, `<` and `>` as markup in mrkdwn and in fallback text. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function scrub(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('<secret>');
}

/**
 * The client's own log lines, routed into pino at one level lower: its warnings repeat what a
 * DeliveryError says. It redacts the token from headers, not from what Slack's answers echo back.
 */
function slackLogger(log: Logger, token: string): SlackLogger {
  const line = (msg: unknown[]) => ({ slack: scrub(msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' '), token) });
  return {
    debug: (...msg) => log.trace(line(msg), 'slack client'),
    info: (...msg) => log.debug(line(msg), 'slack client'),
    warn: (...msg) => log.debug(line(msg), 'slack client'),
    error: (...msg) => log.warn(line(msg), 'slack client'),
    setLevel: () => {},
    getLevel: () => LogLevel.DEBUG,
    setName: () => {},
  };
}
