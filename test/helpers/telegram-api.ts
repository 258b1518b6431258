import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttp, type TestServer } from './servers.js';

const FIXTURES = new URL('../fixtures/providers/', import.meta.url);
const json = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));

/** One of the Bot API's answers, as `test/fixtures/providers/telegram-errors.json` holds them. */
export type TelegramFailure =
  | 'not-modified'
  | 'edit-not-found'
  | 'chat-not-found'
  | 'cannot-parse'
  | 'migrated'
  | 'unauthorized'
  | 'blocked'
  | 'rate-limited'
  | 'server-error';
interface Canned {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}
const ANSWERS = json('telegram-errors.json') as Record<TelegramFailure, Canned>;
const SENT = json('telegram-sendMessage-response.json') as { ok: true; result: Record<string, unknown> };

/** One Bot API call as the server saw it (the token in the path is not kept). */
export interface TelegramRequest {
  method: string;
  body: Record<string, unknown>;
  status: number | undefined;
}

/** A message the bot has in a chat. */
export interface TelegramMessage {
  chat_id: string;
  message_id: number;
  text: string;
  reply_markup?: unknown;
  reply_to?: number;
}

/** A local Bot API stand-in, `POST /bot<token>/<method>`, on 127.0.0.1. */
export interface TelegramApi extends TestServer {
  /** Every call, answered or not. */
  readonly requests: TelegramRequest[];
  /** Messages in the chats, by `<chat_id>/<message_id>`. */
  readonly messages: Map<string, TelegramMessage>;
  /** Chats the bot may write to (others answer 400 chat not found; `blocked` ones 403). */
  readonly chats: Set<string>;
  readonly blocked: Set<string>;
  /** Answers for the next calls, one each, before the server validates again; `hang` never answers. */
  queue: Array<TelegramFailure | 'hang'>;
}

const TAGS = new Set(['b', 'strong', 'i', 'em', 'u', 'ins', 's', 'strike', 'del', 'a', 'code', 'pre', 'blockquote', 'tg-spoiler']);

/**
 * Starts a Bot API stand-in for `sendMessage` and `editMessageText`: it checks the token, the chat,
 * the HTML (only Telegram's tags, balanced, entities escaped; else "can't parse entities"), 4,096
 * characters, URL buttons; keeps the messages so an edit of the same text answers "message is not
 * modified" and an edit of an unknown one "message to edit not found", as Telegram does.
 */
export async function startTelegramApi(opts: { token: string; chats: string[] }): Promise<TelegramApi> {
  const requests: TelegramRequest[] = [];
  const messages = new Map<string, TelegramMessage>();
  const chats = new Set(opts.chats);
  const blocked = new Set<string>();
  const state = { next: 4242 };

  const server = await startHttp((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      // An empty body: the checks below refuse it.
    }
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? '');
    const record: TelegramRequest = { method: m?.[2] ?? '', body, status: undefined };
    requests.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };
    const canned = (name: TelegramFailure) => send(ANSWERS[name].status, ANSWERS[name].body, ANSWERS[name].headers);
    const bad = (description: string) => send(400, { ok: false, error_code: 400, description: `Bad Request: ${description}` });

    const forced = self.queue.shift();
    if (forced === 'hang') return;
    if (forced !== undefined) return canned(forced);
    if (!m) return send(404, { ok: false, error_code: 404, description: 'Not Found' });
    if (m[1] !== opts.token) return canned('unauthorized');

    const chat = String(body.chat_id ?? '');
    if (!chats.has(chat)) return canned('chat-not-found');
    if (blocked.has(chat)) return canned('blocked');
    const text = body.text;
    if (typeof text !== 'string' || text.trim() === '') return bad('message text is empty');
    const problem = body.parse_mode === 'HTML' ? htmlProblem(text) : undefined;
    if (problem) return bad(`can't parse entities: ${problem}`);
    if (visible(text).length > 4096) return bad('message is too long');
    const markup = body.reply_markup as { inline_keyboard?: Array<Array<{ url?: unknown }>> } | undefined;
    for (const b of markup?.inline_keyboard?.flat() ?? [])
      if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url)) return bad('BUTTON_URL_INVALID');

    if (m[2] === 'sendMessage') {
      const id = state.next++;
      const reply = (body.reply_parameters as { message_id?: number } | undefined)?.message_id;
      messages.set(`${chat}/${id}`, { chat_id: chat, message_id: id, text, reply_markup: markup, ...(reply ? { reply_to: reply } : {}) });
      return send(200, {
        ok: true,
        result: { ...SENT.result, message_id: id, chat: { ...(SENT.result.chat as object), id: Number(chat) }, text: visible(text) },
      });
    }
    if (m[2] === 'editMessageText') {
      const key = `${chat}/${String(body.message_id)}`;
      const before = messages.get(key);
      if (!before) return canned('edit-not-found');
      if (before.text === text && JSON.stringify(before.reply_markup) === JSON.stringify(markup)) return canned('not-modified');
      messages.set(key, { ...before, text, reply_markup: markup });
      return send(200, {
        ok: true,
        result: { ...SENT.result, message_id: before.message_id, chat: { id: Number(chat) }, text: visible(text) },
      });
    }
    send(404, { ok: false, error_code: 404, description: 'Not Found' });
  }

  const self = Object.assign(server, {
    requests,
    messages,
    chats,
    blocked,
    queue: [] as Array<TelegramFailure | 'hang'>,
  });
  return self;
}

/** What Telegram's HTML parser would refuse: an unknown or unbalanced tag, a bare `&` or `<`. */
function htmlProblem(text: string): string | undefined {
  const open: string[] = [];
  for (const m of text.matchAll(/<(\/?)([a-z-]+)(?:\s[^<>]*)?>|<|&(?!(?:amp|lt|gt|quot|#\d+);)/g)) {
    if (m[2] === undefined) return `unexpected "${m[0]}"`;
    if (!TAGS.has(m[2])) return `Unsupported start tag "${m[2]}"`;
    if (m[1] === '') open.push(m[2]);
    else if (open.pop() !== m[2]) return `Unexpected end tag "${m[2]}"`;
  }
  return open.length > 0 ? `Can't find end tag corresponding to start tag "${open[0]}"` : undefined;
}

function visible(html: string): string {
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}
