import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttp, type TestServer } from './servers.js';

const FIXTURES = new URL('../fixtures/providers/', import.meta.url);
const json = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));

/** One of Discord's documented answers, as `test/fixtures/providers/discord-errors.json` holds them. */
export type DiscordFailure =
  | 'invalid-form-body'
  | 'invalid-token'
  | 'unknown-webhook'
  | 'unknown-message'
  | 'rate-limited'
  | 'server-error';
interface Canned {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}
const ANSWERS = json('discord-errors.json') as Record<DiscordFailure, Canned>;
const MESSAGE = json('discord-message.json') as Record<string, unknown>;

/** One request as the server saw it. */
export interface DiscordRequest {
  method: string;
  path: string;
  query: string;
  body: Record<string, unknown>;
  status: number | undefined;
}

/** A local stand-in for one Discord webhook, `POST|PATCH /api/webhooks/{id}/{token}…`, on 127.0.0.1. */
export interface DiscordApi extends TestServer {
  /** The webhook URL a channel is configured with. */
  webhookUrl: string;
  /** Every request, answered or not. */
  readonly requests: DiscordRequest[];
  /** Messages the webhook holds now, by id (an edit replaces the body; `delete` simulates a moderator). */
  readonly messages: Map<string, Record<string, unknown>>;
  /** Answers for the next requests, one each, before the server validates and accepts again; `hang` never answers. */
  queue: Array<DiscordFailure | 'hang'>;
}

/**
 * Starts a Discord webhook stand-in: it checks the id and token in the path and the documented
 * limits (content ≤ 2,000, ≤ 10 embeds, title ≤ 256, description ≤ 4,096, ≤ 25 fields), keeps the
 * messages it created so PATCH can edit them (404 Unknown Message otherwise), and answers with
 * Discord's bodies from the fixture files.
 */
export async function startDiscordApi(opts: { id?: string; token?: string } = {}): Promise<DiscordApi> {
  const id = opts.id ?? '1179001462237204510';
  const token = opts.token ?? 'dGhpcy1pcy1hLXRlc3Qtd2ViaG9vay10b2tlbi0wMDAx';
  const requests: DiscordRequest[] = [];
  const messages = new Map<string, Record<string, unknown>>();
  const state = { next: 1311029845611040768n };

  const server = await startHttp((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      // Answered 400 below, as Discord does for a body it cannot read.
    }
    const record: DiscordRequest = { method: req.method ?? '', path: url.pathname, query: url.search, body, status: undefined };
    requests.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': typeof payload === 'string' ? 'text/html' : 'application/json', ...headers });
      res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
    };
    const canned = (name: DiscordFailure) => send(ANSWERS[name].status, ANSWERS[name].body, ANSWERS[name].headers);

    const forced = self.queue.shift();
    if (forced === 'hang') return;
    if (forced !== undefined) return canned(forced);

    const m = /^\/api\/webhooks\/([^/]+)\/([^/]+)(?:\/messages\/([^/]+))?$/.exec(url.pathname);
    if (!m || m[1] !== id) return canned('unknown-webhook');
    if (m[2] !== token) return canned('invalid-token');
    if (!valid(body)) return canned('invalid-form-body');
    if (req.method === 'POST' && m[3] === undefined) {
      const messageId = String(state.next++);
      messages.set(messageId, body);
      if (url.searchParams.get('wait') !== 'true') return send(204, '');
      return send(200, { ...MESSAGE, id: messageId, content: body.content, embeds: body.embeds ?? [] });
    }
    if (req.method === 'PATCH' && m[3] !== undefined) {
      if (!messages.has(m[3])) return canned('unknown-message');
      messages.set(m[3], body);
      return send(200, {
        ...MESSAGE,
        id: m[3],
        content: body.content,
        embeds: body.embeds ?? [],
        edited_timestamp: new Date().toISOString(),
      });
    }
    send(405, { message: '405: Method Not Allowed', code: 0 });
  }

  const self = Object.assign(server, {
    webhookUrl: `${server.url}/api/webhooks/${id}/${token}`,
    requests,
    messages,
    queue: [] as Array<DiscordFailure | 'hang'>,
  });
  return self;
}

function valid(body: Record<string, unknown>): boolean {
  const len = (v: unknown, max: number) => v === undefined || (typeof v === 'string' && v.length <= max);
  if (!len(body.content, 2000) || !len(body.username, 80)) return false;
  const embeds = body.embeds ?? [];
  if (!Array.isArray(embeds) || embeds.length > 10) return false;
  if (body.content === undefined && embeds.length === 0) return false;
  return embeds.every((e: Record<string, unknown>) => {
    const fields = (e.fields ?? []) as Array<Record<string, unknown>>;
    return (
      len(e.title, 256) &&
      len(e.description, 4096) &&
      (e.color === undefined || (Number.isInteger(e.color) && (e.color as number) >= 0 && (e.color as number) <= 0xffffff)) &&
      fields.length <= 25 &&
      fields.every(
        (f) =>
          typeof f.name === 'string' &&
          f.name.length > 0 &&
          len(f.name, 256) &&
          typeof f.value === 'string' &&
          f.value.length > 0 &&
          len(f.value, 1024),
      )
    );
  });
}
