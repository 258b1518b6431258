import { type Static, Type } from '@sinclair/typebox';
import { Agent } from 'undici';
import { createRedactor, type Redactor } from '../../lib/redactor.js';
import { type Message, render } from '../message.js';
import { callJson, cut, excerpt, isAbsoluteHttp, type JsonAnswer, parseRetryAfter, secondsToMs } from '../provider-http.js';
import { DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

const schema = Type.Object(
  {
    /**
     * The webhook's URL (channel settings → Integrations → Webhooks → Copy Webhook URL). Its last
     * segment is the webhook's token: anyone holding the URL can post, so it is a secret. Named
     * `webhookUrl` (not `url`) so config printing and log redaction treat it as one by its name.
     */
    webhookUrl: Type.String({
      pattern: '^https?://[^\\s?#]+/webhooks/[0-9]+/[A-Za-z0-9_-]+$',
      expected: 'a Discord webhook URL like https://discord.com/api/webhooks/<id>/<token>, from ${DISCORD_WEBHOOK_URL}',
    }),
    /** Replaces the webhook's own name on each message. */
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 80, expected: 'a display name of 1 to 80 characters' })),
  },
  { additionalProperties: false },
);

/** A `discord` channel's config. */
export type DiscordConfig = Static<typeof schema>;

/** Discord's documented limits (characters); a message over any of them is refused whole with a 400. */
const LIMITS = { content: 2000, title: 256, description: 4096, fields: 25, fieldName: 256, fieldValue: 1024 };

/** Discord's error codes a permanent failure is likely to carry, and what to do about them. */
const HINTS: Record<number, string> = {
  10015: 'the webhook was deleted; create a new one and update `webhookUrl`',
  50027: 'the webhook token is wrong; copy the URL again into `webhookUrl`',
  50035: 'Discord refused the message body',
};

/** A message body as Discord's Execute/Edit Webhook take it. */
interface DiscordMessage {
  content: string;
  username?: string;
  embeds: Array<{
    title: string;
    description: string;
    color: number;
    fields: Array<{ name: string; value: string; inline: boolean }>;
    url?: string;
    timestamp: string;
  }>;
  /** Nothing in a page may ping anyone: a probe's error text could hold `@everyone`. */
  allowed_mentions: { parse: never[] };
}

export const discord = defineChannel({
  schema,
  // A webhook posts to one channel only: it can carry a person's page when a step names it in `via:`.
  person: 'own-target',
  create(name, config) {
    const base = config.webhookUrl;
    const host = new URL(base).host;
    // The whole URL, and its token segment in every form (encoded, cut short), whatever echoes it back.
    const redactor = createRedactor([{ value: base, partial: false }]);
    // Backstops only: the worker's per-send signal normally ends a request first.
    const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });

    const post = async (body: DiscordMessage, ctx: SendContext): Promise<string | undefined> => {
      // `wait=true`: Discord answers with the message object, whose id later edits need.
      const answer = await callJson(
        `${base}?wait=true`,
        { method: 'POST', body, agent, where: `Discord webhook POST to ${host}`, redactor },
        ctx,
      );
      if (answer.status === 200 || answer.status === 204) {
        const id = answer.json.id;
        return typeof id === 'string' && /^[0-9]+$/.test(id) ? id : undefined;
      }
      throw failure(answer, 'POST', redactor, ctx.clock.now());
    };

    /** Edits the page in place; undefined when Discord no longer has it (deleted by someone), so the caller posts anew. */
    const edit = async (messageId: string, body: DiscordMessage, ctx: SendContext): Promise<string | undefined> => {
      const url = `${base}/messages/${messageId}`;
      const { username: _ignored, ...editable } = body;
      const answer = await callJson(
        url,
        { method: 'PATCH', body: editable, agent, where: `Discord webhook PATCH to ${host}`, redactor },
        ctx,
      );
      if (answer.status === 200) return messageId;
      if (answer.status === 404) return undefined;
      throw failure(answer, 'PATCH', redactor, ctx.clock.now());
    };

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const body = compose(n, render(n, ctx.clock.now()), config.username);
        const ref = n.ref?.message_id;
        const known = typeof ref === 'string' && /^[0-9]+$/.test(ref) ? ref : undefined;
        if (known !== undefined && (n.action === 'acknowledge' || n.action === 'resolve')) {
          const edited = await edit(known, body, ctx);
          if (edited !== undefined) return { ref: { message_id: edited } };
          // Announcing the new state in a fresh message beats never announcing it.
          ctx.logger.warn({ channel: name, messageId: known }, 'discord message to edit is gone; posting a new one');
        }
        const id = await post(body, ctx);
        // A reminder is a message of its own; later edits still belong to the original page.
        if (n.action === 'remind' && known !== undefined) return { ref: { message_id: known } };
        return id === undefined ? {} : { ref: { message_id: id } };
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** The message for a notification: one line of content (what notifications show) and one embed with the rest. */
export function compose(n: Notification, msg: Message, username?: string): DiscordMessage {
  const links = [`[Incident](${n.links.incident})`];
  if (n.links.runbook) links.push(`[Runbook](${n.links.runbook})`);
  if (n.links.dashboard) links.push(`[Dashboard](${n.links.dashboard})`);
  // Signed one-click links, on pages that still ask someone to act; an edit on ack/resolve drops them.
  if ((n.action === 'trigger' || n.action === 'remind') && n.links.ack && n.links.resolve) {
    links.push(`[Acknowledge](${n.links.ack})`, `[Resolve](${n.links.resolve})`);
  }
  const usable = links.filter((l) => isAbsoluteHttp(/\((.*)\)$/.exec(l)?.[1]));
  const summary = n.action === 'trigger' || n.action === 'remind' ? escapeMarkdown(n.incident.summary) : '';
  const description = [summary, usable.join(' · '), `dedup \`${n.dedupKey.replace(/`/g, "'")}\``].filter(Boolean).join('\n\n');
  const embed: DiscordMessage['embeds'][number] = {
    title: cut(msg.title, LIMITS.title),
    description: cut(description, LIMITS.description),
    color: Number.parseInt(msg.color.slice(1), 16),
    fields: msg.facts.slice(0, LIMITS.fields).map(([label, value]) => ({
      name: cut(label, LIMITS.fieldName),
      value: cut(escapeMarkdown(value), LIMITS.fieldValue),
      inline: label !== 'Last error' && label !== 'Labels',
    })),
    timestamp: new Date(n.createdAt).toISOString(),
  };
  if (isAbsoluteHttp(n.links.incident)) embed.url = n.links.incident;
  const body: DiscordMessage = {
    content: cut(escapeMarkdown(msg.title), LIMITS.content),
    embeds: [embed],
    allowed_mentions: { parse: [] },
  };
  if (username !== undefined) body.username = username;
  return body;
}

/** Turns a refused request into a DeliveryError that says whether trying again can help. */
function failure(answer: JsonAnswer, method: 'POST' | 'PATCH', redactor: Redactor, now: number): DeliveryError {
  const { status, json } = answer;
  const code = typeof json.code === 'number' ? json.code : undefined;
  const said = typeof json.message === 'string' ? `${json.message}${code !== undefined ? ` (code ${code})` : ''}` : excerpt(answer.text);
  const where = `Discord webhook ${method} answered ${status}`;
  const text = (s: string) => redactor.text(s);
  if (status === 429) {
    // The body's `retry_after` is exact (a float of seconds); the header is rounded up. Either will do.
    const wait = secondsToMs(json.retry_after) ?? parseRetryAfter(answer.retryAfter, now);
    const scope = json.global === true ? 'all of this bot/IP' : 'this webhook';
    return new DeliveryError(text(`${where}: rate limited for ${scope}${wait !== undefined ? `; retry after ${wait} ms` : ''}`), {
      retryable: true,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    });
  }
  if (status >= 500 || status === 408) return new DeliveryError(text(`${where}${said ? `: ${said}` : ''}`), { retryable: true });
  const hint =
    code !== undefined && HINTS[code] !== undefined
      ? `: ${HINTS[code]}`
      : status === 401 || status === 403 || status === 404
        ? ': unknown webhook; check `webhookUrl`'
        : '';
  return new DeliveryError(text(`${where}${said ? `: ${said}` : ''}${hint} (permanent, not retried)`), { retryable: false });
}

/** Discord reads these as markdown; a probe's error text must show as written (pings are off via allowed_mentions). */
function escapeMarkdown(text: string): string {
  return text.replace(/([\\*_~`|>[\]()])/g, '\\$1');
}
