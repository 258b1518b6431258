import net, { isIP } from 'node:net';
import tls from 'node:tls';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { type Conversation, ConversationEnded, converse, quote } from './conversation.js';
import { connectReason, DNS_ERRORS, endpoint } from './sockets.js';
import { alertCause, connectionProblems, daysRemaining, earliestExpiry, trustedCas } from './tls-common.js';
import { checkEntry, defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const Step = Type.Union(
  [
    Type.Object({ send: Type.String({ expected: 'the text to send' }) }, { additionalProperties: false }),
    Type.Object({ expect: Type.String({ minLength: 1, expected: 'a regular expression' }) }, { additionalProperties: false }),
    Type.Object({ starttls: Type.Literal(true, { expected: 'true' }) }, { additionalProperties: false }),
  ],
  { expected: 'a step: { send: "…" }, { expect: "regex" } or { starttls: true }' },
);

const schema = Type.Object(
  {
    host: Type.String({ pattern: '^[^\\s/@]+$', expected: 'a host name or IP address, without scheme or port' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, expected: 'a port number 1-65535' }),
    /** TLS from the first byte (the `tls` kind judges certificates in depth; this checks that a TLS service answers). */
    tls: Type.Boolean({ default: false }),
    /** Accept any certificate (TLS still happens); for self-signed services. */
    insecure: Type.Boolean({ default: false }),
    /** Extra trusted CA certificates in PEM; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** The name sent as SNI and checked against the certificate; defaults to `host`. */
    servername: Type.Optional(Type.String({ pattern: '^[^\\s/@:]+$|^[0-9a-fA-F:.]+$', expected: 'a host name' })),
    /** A client certificate (PEM) for services that require one; needs `key`. */
    cert: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a certificate' })),
    key: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a private key' })),
    /** The conversation, in order: text to send, a line to wait for, a switch to TLS. */
    steps: Type.Array(Step, { default: [], maxItems: 100, expected: 'a list of steps' }),
    /**
     * The firewall check: the run passes only when the connection is refused or never answers
     * ("SSH to the database from outside should time out or reject").
     */
    refused: Type.Boolean({ default: false }),
    /** Which address family to connect over; `auto` takes what the resolver gives. */
    ipProtocol: Type.Union([Type.Literal('ip4'), Type.Literal('ip6'), Type.Literal('auto')], {
      default: 'auto',
      expected: 'one of ip4, ip6, auto',
    }),
  },
  { additionalProperties: false },
);

/** The `tcp` kind's own fields of a probe definition. */
export type TcpSpec = Static<typeof schema>;

export const tcp = defineProber({
  schema,
  report: {
    target: (spec) => endpoint(spec.host, spec.port),
    latency: true,
    evidence(spec, w) {
      if (!spec.refused) return undefined;
      return checkEntry('firewall', spec.id, endpoint(spec.host, spec.port), w);
    },
  },
  values(spec) {
    if (spec.refused) return ['latency_ms'];
    const secured = spec.tls || spec.steps.some((s) => 'starttls' in s);
    return ['connect_ms', 'latency_ms', 'ip_protocol', ...(secured ? ['tls_days_remaining', 'tls_version'] : [])];
  },
  check(spec) {
    const problems: SpecProblem[] = [];
    problems.push(...connectionProblems(spec));
    let expects = 0;
    let upgrades = 0;
    spec.steps.forEach((step, i) => {
      if ('expect' in step) {
        expects++;
        try {
          new RegExp(step.expect);
        } catch (err) {
          problems.push({ path: `steps[${i}].expect`, message: `expected a regular expression; ${messageOf(err)}` });
        }
      } else if ('send' in step) {
        if (expects === 0 && /(^|[^$])\$(\d|<)/.test(step.send)) {
          problems.push({
            path: `steps[${i}].send`,
            message: 'refers to a group ($1, $<name>) before any expect step matched one (write $$ for a literal $)',
          });
        }
      } else if (spec.tls) {
        problems.push({ path: `steps[${i}].starttls`, message: 'the connection is already TLS (tls: true): drop one of them' });
      } else if (++upgrades > 1) {
        problems.push({ path: `steps[${i}].starttls`, message: 'the connection can switch to TLS once' });
      }
    });
    if (spec.refused && (spec.tls || spec.steps.length > 0)) {
      problems.push({ path: 'refused', message: 'a refused check only connects: it takes no tls or steps' });
    }
    return problems;
  },
  async probe(spec, ctx) {
    const start = ctx.clock.now();
    const budget = ctx.deadline - start;
    // The firewall check must see its own connect timeout before the run's deadline, or a filtered
    // port would end the run as TIMEOUT instead of passing it.
    const limit = spec.refused ? budget - Math.min(1_000, budget / 5) : undefined;
    const opened = await open(spec, ctx, limit);
    if (spec.refused) return judgeRefused(spec, opened, ctx.clock.now() - start);
    if ('failure' in opened) return connectFailure(spec, opened, ctx.clock.now() - start);
    const values: Record<string, number> = { connect_ms: opened.connectMs, ip_protocol: opened.family };
    const session = new Session(opened.socket, spec, ctx, values);
    try {
      const failure = await session.run();
      if (failure) return { ok: false, ...failure, values, ...session.detailsIfAny() };
      values.latency_ms = ctx.clock.now() - start;
      return { ok: true, values, ...session.detailsIfAny() };
    } finally {
      session.close();
    }
  },
});

interface Opened {
  socket: net.Socket;
  connectMs: number;
  family: number;
}
interface OpenFailure {
  failure: { timedOut: 'limit' | 'run'; resolved: boolean } | { error: unknown };
}

/** The TCP connection; on failure nothing is left open. `limitMs` ends the attempt before the run's deadline. */
function open(spec: TcpSpec, ctx: ProbeContext, limitMs: number | undefined): Promise<Opened | OpenFailure> {
  const start = ctx.clock.now();
  if (ctx.signal.aborted) return Promise.resolve({ failure: { timedOut: 'run', resolved: false } });
  return new Promise((resolve) => {
    const family = spec.ipProtocol === 'ip4' ? 4 : spec.ipProtocol === 'ip6' ? 6 : 0;
    const socket = net.connect({ host: spec.host, port: spec.port, family });
    let lookup: number | undefined;
    let done = false;
    const finish = (outcome: Opened | OpenFailure) => {
      if (done) return;
      done = true;
      ctx.signal.removeEventListener('abort', onAbort);
      if (timer !== undefined) clearTimeout(timer);
      if ('failure' in outcome) socket.destroy();
      resolve(outcome);
    };
    const resolved = () => lookup !== undefined || isIP(spec.host) !== 0;
    const onAbort = () => finish({ failure: { timedOut: 'run', resolved: resolved() } });
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer =
      limitMs === undefined ? undefined : setTimeout(() => finish({ failure: { timedOut: 'limit', resolved: resolved() } }), limitMs);
    socket.once('lookup', () => {
      lookup = ctx.clock.now();
    });
    // `on`, not `once`: an error after the connect belongs to the session, but must never go unheard.
    socket.on('error', (error) => finish({ failure: { error } }));
    socket.once('connect', () => {
      const now = ctx.clock.now();
      finish({ socket, connectMs: now - (lookup ?? start), family: socket.remoteFamily === 'IPv6' ? 6 : 4 });
    });
  });
}

function connectFailure(spec: TcpSpec, o: OpenFailure, elapsed: number): ProbeResult {
  const where = endpoint(spec.host, spec.port);
  const f = o.failure;
  if ('timedOut' in f) {
    const phase = f.resolved ? 'connecting to' : 'resolving';
    return { ok: false, code: 'TIMEOUT', message: `timed out after ${formatDuration(elapsed)} ${phase} ${where}`, values: {} };
  }
  const code = codeOf(f.error);
  if (DNS_ERRORS.has(code)) {
    const family =
      spec.ipProtocol === 'auto'
        ? ''
        : ` (looked for ${spec.ipProtocol === 'ip4' ? 'IPv4' : 'IPv6'} addresses only: ipProtocol ${spec.ipProtocol})`;
    return { ok: false, code: 'DNS', message: `DNS lookup of ${spec.host} failed: ${code}${family}`, values: {} };
  }
  const why = connectReason(code) ?? messageOf(f.error);
  return { ok: false, code: 'CONNECT', message: `cannot connect to ${where}: ${why}${code ? ` (${code})` : ''}`, values: {} };
}

/** The firewall check's verdict: refused or unanswered passes; an open port fails; a name that does not resolve proves nothing. */
function judgeRefused(spec: TcpSpec, o: Opened | OpenFailure, elapsed: number): ProbeResult {
  const where = endpoint(spec.host, spec.port);
  if (!('failure' in o)) {
    o.socket.destroy();
    return {
      ok: false,
      code: 'REACHABLE',
      message: `connected to ${where} in ${formatDuration(o.connectMs)}: port open: the firewall lets it through (expected a refusal or a timeout)`,
      values: {},
    };
  }
  const f = o.failure;
  const values = { latency_ms: elapsed };
  if ('timedOut' in f) {
    // The run itself ending (shutdown) says nothing about the firewall.
    if (f.timedOut === 'run')
      return { ok: false, code: 'TIMEOUT', message: `the run ended before the connect attempt to ${where} did`, values: {} };
    if (!f.resolved) return { ok: false, code: 'DNS', message: `DNS lookup of ${spec.host} timed out: nothing was checked`, values: {} };
    return { ok: true, values, details: { outcome: 'timeout', after: formatDuration(elapsed) } };
  }
  const code = codeOf(f.error);
  if (DNS_ERRORS.has(code)) {
    return {
      ok: false,
      code: 'DNS',
      message: `DNS lookup of ${spec.host} failed: ${code}: nothing was checked (is the name right?)`,
      values: {},
    };
  }
  if (connectReason(code) !== undefined)
    return { ok: true, values, details: { outcome: code === 'ETIMEDOUT' ? 'timeout' : 'refused', error: code } };
  return { ok: false, code: 'CONNECT', message: `connecting to ${where} failed in an unexpected way: ${messageOf(f.error)}`, values: {} };
}

/** Lines one expect reads at most: banners and greetings are a few lines; a flood is not a conversation. */
const MAX_LINES = 1_000;

interface StepFailure {
  code: FailureCode;
  message: string;
}

/** One connection's conversation: the steps in order, the socket upgraded in place when a step says so. */
class Session {
  private socket: net.Socket | tls.TLSSocket;
  private talk: Conversation;
  private match: RegExpExecArray | null = null;
  private readonly details: Record<string, unknown> = {};
  private readonly where: string;

  constructor(
    socket: net.Socket,
    private readonly spec: TcpSpec,
    private readonly ctx: ProbeContext,
    private readonly values: Record<string, number>,
  ) {
    this.socket = socket;
    this.talk = converse(socket, ctx.signal);
    this.where = endpoint(spec.host, spec.port);
  }

  async run(): Promise<StepFailure | undefined> {
    if (this.spec.tls) {
      const failed = await this.upgrade();
      if (failed) return failed;
    }
    for (const [i, step] of this.spec.steps.entries()) {
      if ('send' in step) {
        this.talk.send(render(step.send, this.match));
      } else if ('expect' in step) {
        const failed = await this.expect(new RegExp(step.expect), i);
        if (failed) return failed;
      } else {
        const failed = await this.upgrade();
        if (failed) return failed;
      }
    }
    return undefined;
  }

  detailsIfAny(): { details?: Record<string, unknown> } {
    return Object.keys(this.details).length === 0 ? {} : { details: this.details };
  }

  close(): void {
    this.talk.release();
    this.socket.destroy();
  }

  private async expect(pattern: RegExp, i: number): Promise<StepFailure | undefined> {
    for (let read = 0; ; read++) {
      if (read === MAX_LINES) {
        const last = this.talk.heard.at(-1) ?? '';
        return {
          code: 'ASSERTION',
          message: `steps[${i}]: none of ${MAX_LINES} lines from ${this.where} matched /${pattern.source}/ (last line ${this.said(last)})`,
        };
      }
      let line: string;
      try {
        line = await this.talk.line();
      } catch (err) {
        const last = this.talk.heard.at(-1);
        const seen = last === undefined ? 'nothing was received' : `last line ${this.said(last)}`;
        const why = err instanceof ConversationEnded && err.end === 'aborted' ? 'the run ended' : 'the server closed the connection';
        return {
          code: 'ASSERTION',
          message: `steps[${i}]: no line from ${this.where} matched /${pattern.source}/ before ${why} (${seen})`,
        };
      }
      const m = pattern.exec(line);
      if (m) {
        this.match = m;
        if (m.length > 1 || m.groups) this.details.captures = [...m.slice(1).map((g) => g ?? ''), ...(m.groups ? [m.groups] : [])];
        return undefined;
      }
    }
  }

  /** Switches the connection to TLS where it stands; judges trust unless `insecure`. */
  private upgrade(): Promise<StepFailure | undefined> {
    const leftover = this.talk.release();
    const spec = this.spec;
    const name = spec.servername ?? spec.host;
    const plain = this.socket;
    return new Promise((resolve) => {
      const started = this.ctx.clock.now();
      let secure: tls.TLSSocket;
      try {
        secure = tls.connect({
          socket: plain,
          // The name the certificate is checked against (Node's identity check reads `host`).
          host: name,
          servername: isIP(name) ? undefined : name,
          rejectUnauthorized: false,
          ca: trustedCas(spec.ca),
          cert: spec.cert,
          key: spec.key,
        });
      } catch (error) {
        resolve({ code: 'TLS', message: `TLS with ${this.where} could not start: ${messageOf(error)}` });
        return;
      }
      this.socket = secure;
      let done = false;
      const finish = (failure: StepFailure | undefined) => {
        if (done) return;
        done = true;
        this.ctx.signal.removeEventListener('abort', onAbort);
        secure.removeListener('secureConnect', onSecure);
        this.talk = converse(secure, this.ctx.signal);
        resolve(failure);
      };
      const onAbort = () =>
        finish({
          code: 'TIMEOUT',
          message: `timed out after ${formatDuration(this.ctx.clock.now() - started)} in the TLS handshake with ${this.where}`,
        });
      const onSecure = () => {
        this.values.tls_version = Number(/^TLSv(1(\.\d)?)$/.exec(secure.getProtocol() ?? '')?.[1] ?? 0);
        const expiry = earliestExpiry(secure.getPeerCertificate(true));
        if (expiry !== undefined) this.values.tls_days_remaining = daysRemaining(expiry, this.ctx.clock.now());
        this.details.protocol = secure.getProtocol();
        if (!spec.insecure && !secure.authorized) {
          const why = String(secure.authorizationError);
          finish({
            code: 'TLS',
            message: `the certificate of ${this.where} is not trusted for ${name}: ${why} (add its CA with ca:, set servername:, or insecure: true)`,
          });
          return;
        }
        finish(undefined);
      };
      this.ctx.signal.addEventListener('abort', onAbort, { once: true });
      secure.once('secureConnect', onSecure);
      secure.on('error', (error) => {
        const code = codeOf(error);
        const cause = alertCause(code, spec.cert === undefined ? undefined : 'vigil sent the certificate in cert:') ?? messageOf(error);
        finish({ code: 'TLS', message: `TLS handshake with ${this.where} failed: ${cause}` });
      });
      secure.once('close', () =>
        finish({ code: 'TLS', message: `TLS handshake with ${this.where} failed: the server closed the connection` }),
      );
      // Bytes the server sent before we switched would be taken as its handshake: none are expected.
      if (leftover.length > 0) {
        finish({ code: 'PROTOCOL', message: `${this.where} sent ${quote(leftover.toString('latin1'))} before the TLS handshake` });
      }
    });
  }

  /** What the server said, for a message: cut short and with the probe's secrets hidden. */
  private said(line: string): string {
    return quote(this.ctx.redactor?.text(line) ?? line);
  }
}

/** `send` text as it goes on the wire: `$1`, `$<name>` from the last expect's match, `$$` a `$`, `\r\n` appended unless it ends in `\n`. */
function render(text: string, match: RegExpExecArray | null): string {
  const filled = text.replace(/\$(\$|\d+|<([^>]+)>)/g, (_whole, ref: string, name: string | undefined) => {
    if (ref === '$') return '$';
    if (name !== undefined) return match?.groups?.[name] ?? '';
    return match?.[Number(ref)] ?? '';
  });
  const unescaped = unescapeText(filled);
  return unescaped.endsWith('\n') ? unescaped : `${unescaped}\r\n`;
}

/** `\r`, `\n`, `\t`, `\\` and `\xNN` written as text (a single-quoted YAML string keeps them so). */
function unescapeText(text: string): string {
  return text.replace(/\\(r|n|t|\\|x[0-9a-fA-F]{2})/g, (_w, c: string) => {
    if (c === 'r') return '\r';
    if (c === 'n') return '\n';
    if (c === 't') return '\t';
    if (c === '\\') return '\\';
    return String.fromCharCode(Number.parseInt(c.slice(1), 16));
  });
}
