import type { Socket } from 'node:net';

/**
 * A plaintext exchange on a TCP socket, line by line or byte by byte, for the `tcp` kind's steps
 * and the `tls` kind's STARTTLS preambles. Every read ends at the run's signal; `release()` hands
 * the socket back untouched (no listener left) so it can be upgraded to TLS.
 */

/** Why a read ended without what it waited for. */
export type ReadEnd = 'aborted' | 'closed' | 'error';

/** A read that ended early, with what the peer said before (for the message). */
export class ConversationEnded extends Error {
  readonly end: ReadEnd;
  constructor(end: ReadEnd, cause?: unknown) {
    super(end === 'aborted' ? 'the run ended while waiting for the server' : 'the server closed the connection', { cause });
    this.name = 'ConversationEnded';
    this.end = end;
  }
}

/** A line longer than this is handed over cut, so a peer that never sends a newline cannot grow the buffer. */
export const MAX_LINE = 8_192;
/** Unread bytes kept at most: a conversation reads lines, not bulk data. */
const MAX_BUFFERED = 1_048_576;

export interface Conversation {
  /** The next line, without its `\r\n`; a last unterminated line when the peer closes; throws ConversationEnded. */
  line(): Promise<string>;
  /** Exactly `n` bytes; throws ConversationEnded. */
  bytes(n: number): Promise<Buffer>;
  send(data: string | Buffer): void;
  /** The lines read so far, newest last (at most the last 20), for messages. */
  readonly heard: readonly string[];
  /** Stops listening; the socket stays open for its next owner. Bytes already buffered are returned. */
  release(): Buffer;
}

export function converse(socket: Socket, signal: AbortSignal): Conversation {
  let buffer = Buffer.alloc(0);
  let ended: { end: ReadEnd; cause?: unknown } | undefined;
  let wake: (() => void) | undefined;
  const heard: string[] = [];
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    // A peer that floods faster than the steps read would otherwise grow this without bound.
    if (buffer.length > MAX_BUFFERED) {
      ended ??= { end: 'error', cause: new Error(`the server sent over ${MAX_BUFFERED} bytes unread`) };
      socket.destroy();
    }
    notify();
  };
  const onEnd = () => {
    ended ??= { end: 'closed' };
    notify();
  };
  const onError = (cause: unknown) => {
    ended ??= { end: 'error', cause };
    notify();
  };
  const onAbort = () => {
    ended ??= { end: 'aborted' };
    notify();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();

  const next = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
    });
  const fail = (): never => {
    throw new ConversationEnded(ended?.end ?? 'closed', ended?.cause);
  };
  const remember = (line: string) => {
    heard.push(line);
    if (heard.length > 20) heard.shift();
    return line;
  };

  return {
    heard,
    async line() {
      for (;;) {
        const nl = buffer.indexOf(0x0a);
        if (nl >= 0 || buffer.length >= MAX_LINE) {
          const cut = nl >= 0 ? Math.min(nl, MAX_LINE) : MAX_LINE;
          const text = buffer.subarray(0, cut).toString('utf8').replace(/\r$/, '');
          buffer = buffer.subarray(nl >= 0 && nl <= MAX_LINE ? nl + 1 : cut);
          return remember(text);
        }
        // An aborted run stops at once; a peer that closed still gets its last words read.
        if (ended?.end === 'aborted') fail();
        if (ended !== undefined) {
          if (buffer.length === 0) fail();
          const text = buffer.toString('utf8');
          buffer = Buffer.alloc(0);
          return remember(text);
        }
        await next();
      }
    },
    async bytes(n) {
      for (;;) {
        if (buffer.length >= n) {
          const out = buffer.subarray(0, n);
          buffer = buffer.subarray(n);
          return out;
        }
        if (ended !== undefined) fail();
        await next();
      }
    },
    send(data) {
      socket.write(data);
    },
    release() {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      signal.removeEventListener('abort', onAbort);
      notify();
      return buffer;
    },
  };
}

/** A peer's words for a message: one line, cut to 120 characters, control characters shown as `\xNN`. */
export function quote(text: string, max = 120): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes.
  const shown = text.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return JSON.stringify(shown.length > max ? `${shown.slice(0, max)}…` : shown);
}

/** The STARTTLS dialects the `tls` kind speaks before its handshake. */
export const STARTTLS = ['smtp', 'imap', 'pop3', 'ftp', 'postgres'] as const;
export type StartTls = (typeof STARTTLS)[number];

/** The server did not agree to upgrade: what it said, for a PROTOCOL failure. */
export class UpgradeRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpgradeRefused';
  }
}

const LABEL: Record<StartTls, string> = { smtp: 'SMTP', imap: 'IMAP', pop3: 'POP3', ftp: 'FTP', postgres: 'PostgreSQL' };

/** `SMTP`, `IMAP`, …: how messages name a dialect. */
export function dialectName(d: StartTls): string {
  return LABEL[d];
}

/**
 * Speaks `dialect` up to the point where the server starts its TLS handshake. Throws UpgradeRefused
 * when the server answers otherwise, ConversationEnded when it hangs up or the run ends.
 */
export async function negotiateStartTls(c: Conversation, dialect: StartTls): Promise<void> {
  switch (dialect) {
    case 'smtp': {
      await reply(c, '220', 'a 220 greeting');
      c.send('EHLO vigil.probe\r\n');
      const ehlo = await reply(c, '250', 'a 250 answer to EHLO');
      if (!ehlo.some((l) => /^250[- ]STARTTLS\b/i.test(l))) {
        throw new UpgradeRefused(`the server does not offer STARTTLS (its EHLO answer: ${quote(ehlo.join(' | '))})`);
      }
      c.send('STARTTLS\r\n');
      await reply(c, '220', 'a 220 answer to STARTTLS');
      return;
    }
    case 'ftp':
      await reply(c, '220', 'a 220 greeting');
      c.send('AUTH TLS\r\n');
      await reply(c, '234', 'a 234 answer to AUTH TLS');
      return;
    case 'pop3':
      await expectLine(c, /^\+OK/, 'a +OK greeting');
      c.send('STLS\r\n');
      await expectLine(c, /^\+OK/, 'a +OK answer to STLS');
      return;
    case 'imap': {
      await expectLine(c, /^\* (OK|PREAUTH)\b/i, 'a * OK greeting');
      c.send('v1 STARTTLS\r\n');
      // Untagged lines (a CAPABILITY, say) may come first; the tagged one is the answer.
      for (let n = 0; n < 100; n++) {
        const line = await c.line();
        if (line.startsWith('* ')) continue;
        if (/^v1 OK\b/i.test(line)) return;
        throw new UpgradeRefused(`expected "v1 OK" in answer to STARTTLS, the server said ${quote(line)}`);
      }
      throw new UpgradeRefused('expected "v1 OK" in answer to STARTTLS, the server sent over 100 untagged lines');
    }
    case 'postgres': {
      // SSLRequest: length 8, then the magic code 1234 5679; the answer is one byte.
      c.send(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
      const answer = (await c.bytes(1)).toString('latin1');
      if (answer === 'S') return;
      if (answer === 'N') throw new UpgradeRefused('the server refused SSL (answered N to SSLRequest: is ssl = on?)');
      throw new UpgradeRefused(
        `expected S or N in answer to SSLRequest, the server said ${quote(answer + c.release().toString('latin1'))}`,
      );
    }
  }
}

/** A complete SMTP/FTP reply (`250-…` lines up to `250 …`), which must carry `code`. */
async function reply(c: Conversation, code: string, what: string): Promise<string[]> {
  const lines: string[] = [];
  // A hundred continuation lines is far beyond any real reply; it only bounds a babbling peer.
  while (lines.length < 100) {
    const line = await c.line();
    lines.push(line);
    if (!line.startsWith(code)) throw new UpgradeRefused(`expected ${what}, the server said ${quote(line)}`);
    if (line.charAt(3) !== '-') return lines;
  }
  throw new UpgradeRefused(`expected ${what}, the server sent over 100 lines`);
}

async function expectLine(c: Conversation, pattern: RegExp, what: string): Promise<string> {
  const line = await c.line();
  if (!pattern.test(line)) throw new UpgradeRefused(`expected ${what}, the server said ${quote(line)}`);
  return line;
}
