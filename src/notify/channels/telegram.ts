import { type Static, Type } from '@sinclair/typebox';
import { Agent } from 'undici';
import { createRedactor, type Redactor } from '../../lib/redactor.js';
import { type Message, render } from '../message.js';
import { callJson, cut, excerpt, isAbsoluteHttp, type JsonAnswer, parseRetryAfter, secondsToMs } from '../provider-http.js';
import { DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

/** A chat id as the Bot API takes it: a number (negative for groups, -100… for channels) or a public `@channelusername`. */
export const TELEGRAM_CHAT_ID = '^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$';

const schema = Type.Object(
  {
    /** From @BotFather (`123456789:AA…`). It sits in the URL path of every call, so every error and log hides it. */
    botToken: Type.String({
      pattern: '^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$',
      expected: 'a Telegram bot token like 123456789:AA… from @BotFather, from ${TELEGRAM_BOT_TOKEN}',
    }),
    /** Where pages go when no person is named: a group, channel or user the bot may write to. */
    chatId: Type.String({
      pattern: TELEGRAM_CHAT_ID,
      expected: 'a Telegram chat id like -1001234567890 or a public channel like @ops_alerts',
    }),
    /** The Bot API base; changed only for a local Bot API server, a proxy or a test server. */
    apiUrl: Type.String({
      default: 'https://api.telegram.org',
      pattern: '^https?://[^\\s?#]+$',
      expected: 'an http:// or https:// URL',
    }),
  },
  { additionalProperties: false },
);

/** A `telegram` channel's config, defaults applied. */
export type TelegramConfig = Static<typeof schema>;

/**
 * Each fact's value (and the title) is cut to this, so the whole message stays under the Bot API's 4,096 characters
 * whatever the error text: cutting the finished HTML could split a tag, and Telegram refuses that.
 */
const MAX_FACT = 400;

/** The message a page posted: acknowledge and resolve edit it, reminders reply to it. */
interface TelegramRef {
  chat_id: string;
  message_id: string;
}

type Button = { text: string; url: string };

/** sendMessage / editMessageText parameters vigil uses. */
interface TelegramMessage {
  chat_id: string;
  text: string;
  parse_mode: 'HTML';
  disable_web_page_preview: true;
  reply_markup?: { inline_keyboard: Button[][] };
}

export const telegram = defineChannel({
  schema,
  // A person's own chat with the bot (they must have pressed Start once): escalation pages them there.
  person: { field: 'telegram' },
  create(name, config) {
    const api = `${config.apiUrl.replace(/\/+$/, '')}/bot${config.botToken}`;
    const host = new URL(config.apiUrl).host;
    const redactor = createRedactor([config.botToken]);
    // Backstops only: the worker's per-send signal normally ends a request first.
    const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });

    const call = async (method: 'sendMessage' | 'editMessageText', body: object, ctx: SendContext): Promise<JsonAnswer> =>
      callJson(`${api}/${method}`, { method: 'POST', body, agent, where: `Telegram ${method} at ${host}`, redactor }, ctx);

    const sendMessage = async (message: TelegramMessage, ctx: SendContext, replyTo?: string): Promise<TelegramRef> => {
      const body =
        replyTo === undefined
          ? message
          : { ...message, reply_parameters: { message_id: Number(replyTo), allow_sending_without_reply: true } };
      const answer = await call('sendMessage', body, ctx);
      const result = answer.json.result as { message_id?: unknown; chat?: { id?: unknown } } | undefined;
      if (answer.json.ok === true && typeof result?.message_id === 'number') {
        const chat = result.chat?.id;
        return {
          chat_id: typeof chat === 'number' || typeof chat === 'string' ? String(chat) : message.chat_id,
          message_id: String(result.message_id),
        };
      }
      if (answer.json.ok === true)
        throw new DeliveryError('Telegram accepted sendMessage but returned no message_id', { retryable: false });
      throw failure(answer, 'sendMessage', redactor, ctx.clock.now());
    };

    /** Edits the page; undefined when Telegram no longer has it, so the caller sends anew. */
    const edit = async (ref: TelegramRef, message: TelegramMessage, ctx: SendContext): Promise<TelegramRef | undefined> => {
      const answer = await call('editMessageText', { ...message, chat_id: ref.chat_id, message_id: Number(ref.message_id) }, ctx);
      if (answer.json.ok === true) return ref;
      const description = typeof answer.json.description === 'string' ? answer.json.description : '';
      // A retry of an edit that landed, or the same words again: the message already says what it must.
      if (answer.status === 400 && /message is not modified/i.test(description)) return ref;
      if (answer.status === 400 && /message to edit not found|message can't be edited/i.test(description)) return undefined;
      throw failure(answer, 'editMessageText', redactor, ctx.clock.now());
    };

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const to = n.recipient?.telegram ?? config.chatId;
        const message = compose(n, render(n, ctx.clock.now()), to);
        const ref = parseRef(n.ref);
        if (ref !== undefined && (n.action === 'acknowledge' || n.action === 'resolve')) {
          const edited = await edit(ref, message, ctx);
          if (edited !== undefined) return { ref: { ...edited } };
          ctx.logger.warn({ channel: name, messageId: ref.message_id }, 'telegram message to edit is gone; sending a new one');
          return { ref: { ...(await sendMessage({ ...message, chat_id: ref.chat_id }, ctx)) } };
        }
        if (ref !== undefined && n.action === 'remind') {
          // A reply in the same chat keeps the reminder beside the page; edits still belong to the page.
          await sendMessage({ ...message, chat_id: ref.chat_id }, ctx, ref.message_id);
          return { ref: { ...ref } };
        }
        return { ref: { ...(await sendMessage(message, ctx)) } };
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** The message in Telegram's HTML: a bold title, the facts, and URL buttons (incident; ack and resolve while it is open). */
export function compose(n: Notification, msg: Message, chatId: string): TelegramMessage {
  const lines = [`<b>${escapeHtml(cut(msg.title, MAX_FACT))}</b>`, ''];
  for (const [label, value] of msg.facts) lines.push(`<b>${escapeHtml(label)}:</b> ${escapeHtml(cut(value, MAX_FACT))}`);
  const links: Array<[string, string | undefined]> = [
    ['Runbook', n.links.runbook],
    ['Dashboard', n.links.dashboard],
    ['Screenshot', n.links.screenshot],
  ];
  const shown = links.filter((l): l is [string, string] => isAbsoluteHttp(l[1]));
  if (shown.length > 0) lines.push('', shown.map(([label, url]) => `<a href="${escapeHtml(url)}">${label}</a>`).join(' · '));
  lines.push('', `<code>${escapeHtml(cut(n.dedupKey, MAX_FACT))}</code>`);

  // Telegram refuses a whole message for one button whose URL it will not open: only absolute http(s) links.
  const rows: Button[][] = [];
  if (isAbsoluteHttp(n.links.incident)) rows.push([{ text: 'Incident', url: n.links.incident }]);
  const { ack, resolve } = n.links;
  if ((n.action === 'trigger' || n.action === 'remind') && isAbsoluteHttp(ack) && isAbsoluteHttp(resolve)) {
    rows.push([
      { text: 'Acknowledge', url: ack },
      { text: 'Resolve', url: resolve },
    ]);
  }
  const message: TelegramMessage = {
    chat_id: chatId,
    text: lines.join('\n'),
    parse_mode: 'HTML',
    disable_web_page_preview: true,
  };
  // An edit without reply_markup removes the keyboard: a settled page keeps only its Incident button.
  if (rows.length > 0) message.reply_markup = { inline_keyboard: rows };
  return message;
}

/** Turns an `ok: false` answer into a DeliveryError that says whether trying again can help. */
function failure(answer: JsonAnswer, method: string, redactor: Redactor, now: number): DeliveryError {
  const { json } = answer;
  const code = typeof json.error_code === 'number' ? json.error_code : answer.status;
  const said = typeof json.description === 'string' ? json.description : excerpt(answer.text);
  const where = `Telegram ${method} failed (${code}${said ? `: ${said}` : ''})`;
  const text = (s: string) => redactor.text(s);
  const parameters = json.parameters;
  const field = (key: string) => (typeof parameters === 'object' && parameters !== null ? Reflect.get(parameters, key) : undefined);
  if (code === 429 || answer.status === 429) {
    const wait = secondsToMs(field('retry_after')) ?? parseRetryAfter(answer.retryAfter, now);
    return new DeliveryError(text(`${where}${wait !== undefined ? `; Telegram asks to retry after ${wait} ms` : ''}`), {
      retryable: true,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    });
  }
  if (answer.status >= 500 || answer.status === 408) return new DeliveryError(text(where), { retryable: true });
  const migrated = field('migrate_to_chat_id');
  const hint =
    typeof migrated === 'number'
      ? `: the group became a supergroup; set chatId to ${migrated}`
      : code === 401 || code === 404
        ? ': check `botToken`'
        : code === 403
          ? ': the bot cannot write to this chat (blocked, removed, or the person never pressed Start)'
          : '';
  return new DeliveryError(text(`${where}${hint} (permanent, not retried)`), { retryable: false });
}

function parseRef(ref: Record<string, string> | undefined): TelegramRef | undefined {
  const chat = ref?.chat_id;
  const id = ref?.message_id;
  return typeof chat === 'string' && /^-?[0-9]+$|^@/.test(chat) && typeof id === 'string' && /^[0-9]+$/.test(id)
    ? { chat_id: chat, message_id: id }
    : undefined;
}

/** Telegram's HTML mode needs these three (and `"` inside an attribute) written as entities. */
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
