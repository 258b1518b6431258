import type { ServerResponse } from 'node:http';
import { startHttp, type TestServer } from './servers.js';

/** How the server answers: as Slack does when all is well, or as it does when it is not. */
export type SlackMode =
  /** `{ok:true, channel, ts}` (chat.update of an unknown message: `message_not_found`, as Slack does). */
  | 'ok'
  /** HTTP 200 `{ok:false, error}` with the configured `error`. */
  | 'platform-error'
  /** HTTP 429 with `Retry-After` (seconds) and `{ok:false, error:"ratelimited"}`. */
  | 'rate-limited'
  /** HTTP 500 with an HTML body, as a proxy in front of Slack might send. */
  | 'server-error'
  /** Reads the request and never answers. */
  | 'hang';

/** One request the server received, decoded the way Slack decodes it. */
export interface SlackCall {
  /** `chat.postMessage`, `chat.update`, … */
  method: string;
  contentType: string;
  authorization: string | undefined;
  /** The raw body as sent. */
  raw: string;
  /** Form fields or JSON members; `blocks`/`attachments` decoded from their JSON strings. */
  body: Record<string, unknown>;
  /** How the server answered (`hang` never does). */
  mode: SlackMode;
  /** Set when the client closed the connection before an answer (an abort). */
  clientGone: boolean;
}

/** A message the server holds, so updates and thread replies can be checked against it. */
export interface SlackMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown;
  threadTs?: string;
  /** Every version after an update, oldest first. */
  history: Array<{ text: string; blocks: unknown }>;
}

/** A Slack Web API stand-in on loopback: `POST /api/:method`, recording every call. */
export interface SlackApiServer {
  /** The `slackApiUrl` / channel `apiUrl` to use: `http://127.0.0.1:<port>/api/`. */
  apiUrl: string;
  calls: SlackCall[];
  /** Messages by ts. */
  messages: Map<string, SlackMessage>;
  /** How every call is answered; `modeFor` overrides it per method. */
  mode: SlackMode;
  modeFor: Partial<Record<string, SlackMode>>;
  /** The `error` of `platform-error`. */
  error: string;
  /** The `Retry-After` seconds of `rate-limited`. */
  retryAfter: number;
  /** Resolves once `count` calls have arrived. */
  waitForCalls(count: number): Promise<void>;
  close(): Promise<void>;
}

/** The id Slack returns for a channel name: what updates and replies must then use. */
export function channelId(channel: string): string {
  return /^[CGD][A-Z0-9]{2,}$/.test(channel)
    ? channel
    : `C${channel
        .replace(/[^a-z0-9]/gi, '')
        .toUpperCase()
        .slice(0, 10)}`;
}

const JSON_FIELDS = ['blocks', 'attachments', 'metadata'];

/**
 * Starts the server. With `token`, calls whose bearer token differs get `invalid_auth`, as Slack
 * answers them, so a test proves the client sent the token where Slack expects it.
 */
export async function startSlackApi(opts: { token?: string } = {}): Promise<SlackApiServer> {
  let seq = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const nextTs = () => `1764158400.${String(++seq).padStart(6, '0')}`;

  const handle = (res: ServerResponse, call: SlackCall) => {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      const type = typeof body === 'string' ? 'text/html' : 'application/json; charset=utf-8';
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    switch (call.mode) {
      case 'hang':
        return;
      case 'server-error':
        return reply(500, '<html><body>500 Internal Server Error</body></html>');
      case 'rate-limited':
        return reply(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(server.retryAfter) });
      case 'platform-error':
        return reply(200, { ok: false, error: server.error });
    }
    if (opts.token !== undefined && call.authorization !== `Bearer ${opts.token}`) return reply(200, { ok: false, error: 'invalid_auth' });

    const b = call.body;
    const text = typeof b.text === 'string' ? b.text : '';
    if (call.method === 'chat.postMessage') {
      if (typeof b.channel !== 'string' || b.channel === '') return reply(200, { ok: false, error: 'channel_not_found' });
      const channel = channelId(b.channel);
      const threadTs = typeof b.thread_ts === 'string' ? b.thread_ts : undefined;
      if (threadTs !== undefined && !server.messages.has(threadTs)) return reply(200, { ok: false, error: 'thread_not_found' });
      const ts = nextTs();
      server.messages.set(ts, { channel, ts, text, blocks: b.blocks, threadTs, history: [] });
      return reply(200, { ok: true, channel, ts, message: { type: 'message', text, ts, ...(threadTs ? { thread_ts: threadTs } : {}) } });
    }
    if (call.method === 'chat.update') {
      const message = typeof b.ts === 'string' ? server.messages.get(b.ts) : undefined;
      if (message === undefined || message.channel !== b.channel) return reply(200, { ok: false, error: 'message_not_found' });
      message.history.push({ text: message.text, blocks: message.blocks });
      message.text = text;
      message.blocks = b.blocks;
      return reply(200, { ok: true, channel: message.channel, ts: message.ts, text });
    }
    return reply(200, { ok: false, error: 'unknown_method' });
  };

  const http: TestServer = await startHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = /^\/api\/([A-Za-z0-9._]+)$/.exec(req.url ?? '')?.[1];
      if (req.method !== 'POST' || method === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      const contentType = req.headers['content-type'] ?? '';
      const call: SlackCall = {
        method,
        contentType,
        authorization: req.headers.authorization,
        raw,
        body: decode(raw, contentType),
        mode: server.modeFor[method] ?? server.mode,
        clientGone: false,
      };
      res.on('close', () => {
        if (!res.writableFinished) call.clientGone = true;
      });
      server.calls.push(call);
      for (const w of waiters.filter((x) => server.calls.length >= x.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      handle(res, call);
    });
  });

  const server: SlackApiServer = {
    apiUrl: `${http.url}/api/`,
    calls: [],
    messages: new Map(),
    mode: 'ok',
    modeFor: {},
    error: 'channel_not_found',
    retryAfter: 7,
    waitForCalls: (count) =>
      server.calls.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    close: () => http.close(),
  };
  return server;
}

/** Form-encoded (what the client sends for chat methods) or JSON (what it sends for a few others). */
function decode(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.startsWith('application/json')) {
    const parsed: unknown = raw === '' ? {} : JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
  const body: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    body[key] = JSON_FIELDS.includes(key) ? JSON.parse(value) : value;
  }
  return body;
}
