import { type ChildProcess, spawn } from 'node:child_process';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf } from '../lib/errors.js';
import { Duration } from '../lib/schema.js';
import { defineProber, type ProbeResult, type SpecProblem } from './types.js';

const schema = Type.Object(
  {
    /** A host name or an IP address (v4 or v6). */
    host: Type.String({
      // Never starts with "-": it goes on ping's command line, and must not be read as an option.
      pattern: '^[A-Za-z0-9_.:%\\[\\]][A-Za-z0-9_.:%\\[\\]-]{0,252}$',
      expected: 'a host name or an IP address, e.g. 10.0.0.1 or db.internal',
    }),
    /** Echo requests per run. */
    count: Type.Integer({ minimum: 1, maximum: 100, default: 3, expected: 'a number of echo requests from 1 to 100' }),
    /** Between two requests; ping refuses less than 200ms to anyone but root. */
    interval: Duration('1s'),
    /** How long ping waits for each reply (`-W`). */
    replyTimeout: Duration('1s'),
    /** ip4 (`-4`), ip6 (`-6`), or auto: whatever the name resolves to first. */
    ipProtocol: Type.Union([Type.Literal('ip4'), Type.Literal('ip6'), Type.Literal('auto')], {
      default: 'auto',
      expected: 'one of ip4, ip6, auto',
    }),
    /** Fails the run (LOSS) when more than this percentage of requests got no reply; by default one reply passes. */
    maxLoss: Type.Optional(Type.Number({ minimum: 0, maximum: 100, expected: 'a percentage from 0 to 100, e.g. 20' })),
    /** Fails the run (ASSERTION) when the average round trip is longer. */
    maxRtt: Type.Optional(Duration()),
    /** blackbox's source_ip_address: the address (or interface) the requests leave from (`-I`). */
    sourceIp: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]{0,127}$', expected: 'an IP address or an interface name, e.g. 10.0.0.5' }),
    ),
    /** blackbox's dont_fragment: sets the DF bit (`-M do`), to find a path MTU below payloadSize. */
    dontFragment: Type.Boolean({ default: false, expected: 'true or false' }),
    /** blackbox's payload_size: bytes of data in each request (`-s`). */
    payloadSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 65_500, expected: 'a payload size in bytes from 0 to 65500' })),
    /** blackbox's ttl: the IP time to live of each request (`-t`). */
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: 255, expected: 'a TTL from 1 to 255' })),
    /** The ping executable: a name looked up on PATH, or an absolute path. */
    binary: Type.String({ minLength: 1, default: 'ping', expected: 'a command name or a path to ping' }),
  },
  { additionalProperties: false },
);

/** The kind-specific fields of an `icmp` definition. */
export type IcmpSpec = Static<typeof schema>;

/** What ping printed, as far as it got. */
export interface PingOutput {
  transmitted?: number;
  received?: number;
  /** Errors ping counted ("+2 errors": unreachable answers from a router). */
  errors?: number;
  /** Round trips of the replies it printed, in ms (duplicates left out). */
  rtts: number[];
  rtt?: { min: number; avg: number; max: number };
  /** The first error line (`From 10.0.0.1 icmp_seq=1 Destination Host Unreachable`). */
  errorLine?: string;
}

const MIN_INTERVAL_MS = 200;
const OUTPUT_MAX = 64 * 1024;
const MESSAGE_MAX = 500;

export const icmp = defineProber({
  schema,
  report: {
    target: (spec) => spec.host,
    latency: true,
  },
  values: () => ['loss_ratio', 'rtt_min_ms', 'rtt_avg_ms', 'rtt_max_ms', 'replies'],
  check(spec) {
    const problems: SpecProblem[] = [];
    if (ms(spec.interval) < MIN_INTERVAL_MS) {
      problems.push({
        path: 'interval',
        message: `expected at least 200ms (ping's floor for a user other than root), got ${spec.interval}`,
      });
    }
    const needs = (spec.count - 1) * ms(spec.interval) + ms(spec.replyTimeout);
    if (needs > ms(spec.timeout)) {
      problems.push({
        path: 'timeout',
        message: `expected more than ${formatDuration(needs)} (count × interval + replyTimeout), got ${spec.timeout}: every run would time out`,
      });
    }
    return problems;
  },
  async probe(spec, ctx) {
    if (ctx.signal.aborted) return { ok: false, code: 'TIMEOUT', message: 'the deadline passed before ping could start', values: {} };
    const args = pingArgs(spec);
    ctx.logger.debug({ binary: spec.binary, host: spec.host }, 'ping');
    const run = await runPing(spec.binary, args, ctx.signal);
    return judge(spec, run);
  },
});

/** ping's command line: numeric output, C locale numbers, every blackbox option ping has a flag for. */
export function pingArgs(spec: IcmpSpec): string[] {
  const args = ['-n', '-c', String(spec.count), '-i', seconds(ms(spec.interval)), '-W', seconds(ms(spec.replyTimeout))];
  if (spec.ipProtocol === 'ip4') args.push('-4');
  if (spec.ipProtocol === 'ip6') args.push('-6');
  if (spec.sourceIp !== undefined) args.push('-I', spec.sourceIp);
  if (spec.dontFragment) args.push('-M', 'do');
  if (spec.payloadSize !== undefined) args.push('-s', String(spec.payloadSize));
  if (spec.ttl !== undefined) args.push('-t', String(spec.ttl));
  // "--": a host is never an option, whatever the pattern above lets through.
  args.push('--', spec.host.replace(/^\[(.*)\]$/, '$1'));
  return args;
}

function seconds(millis: number): string {
  return String(Math.round(millis) / 1000);
}

interface RunOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  spawnError?: Error;
  aborted: boolean;
}

/**
 * Runs ping in its own process group, without a shell, and kills the group when the run's signal
 * aborts: nothing ping started outlives the run.
 */
function runPing(binary: string, args: string[], signal: AbortSignal): Promise<RunOutcome> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      // LC_ALL=C: the summary's words and decimal points are the ones parsePing reads.
      child = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    } catch (err) {
      resolve({ exitCode: null, stdout: '', stderr: '', spawnError: err instanceof Error ? err : new Error(String(err)), aborted: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (stdout.length < OUTPUT_MAX) stdout += s;
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < OUTPUT_MAX) stderr += s;
    });
    let aborted = false;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    let settled = false;
    const finish = (exitCode: number | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({ exitCode, stdout, stderr, aborted, ...(spawnError ? { spawnError } : {}) });
    };
    child.once('error', (err) => {
      // Without a pid the binary never started; with one, a kill failed and 'close' follows.
      if (child.pid === undefined) finish(null, err);
    });
    // 'close', not 'exit': the last lines of output (the summary) are read by then.
    child.once('close', (code) => finish(code));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads iputils ping's output: the reply lines and the two summary lines. */
export function parsePing(text: string): PingOutput {
  const out: PingOutput = { rtts: [] };
  for (const line of text.split('\n')) {
    const reply = /\bicmp_seq=\d+\b.*\btime[=<]([\d.]+) ms/.exec(line);
    if (reply?.[1] !== undefined) {
      if (!/\(DUP!\)/.test(line)) out.rtts.push(Number(reply[1]));
      continue;
    }
    const stats = /^(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+(\d+) duplicates)?(?:, \+(\d+) errors)?/.exec(line);
    if (stats) {
      out.transmitted = Number(stats[1]);
      out.received = Number(stats[2]);
      if (stats[4] !== undefined) out.errors = Number(stats[4]);
      continue;
    }
    const rtt = /^(?:rtt|round-trip) min\/avg\/max(?:\/mdev)? = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(line);
    if (rtt) {
      out.rtt = { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]) };
      continue;
    }
    if (out.errorLine === undefined && /^From \S+.*icmp_seq=\d+ /.test(line)) out.errorLine = line.trim();
  }
  return out;
}

const DNS_ERROR =
  /Name or service not known|Temporary failure in name resolution|No address associated with hostname|nodename nor servname/i;

function judge(spec: IcmpSpec, run: RunOutcome): ProbeResult {
  const fail = (code: string, message: string, values: Record<string, number> = {}): ProbeResult => ({
    ok: false,
    code,
    message: clip(message),
    values,
  });
  if (run.spawnError) {
    const code = codeOf(run.spawnError);
    if (code === 'ENOENT') {
      const where = spec.binary.includes('/') ? `at ${spec.binary}` : 'on PATH';
      return fail('PING_MISSING', `ping not found ${where}: install iputils-ping in vigil's image (apt-get install iputils-ping)`);
    }
    if (code === 'EACCES') return fail('PING_MISSING', `ping (${spec.binary}) is not executable (EACCES): chmod +x it`);
    // Debian's ping carries the cap_net_raw file capability: where the container's capability set
    // lacks NET_RAW (podman's default, Kubernetes dropping ALL), the kernel refuses to exec it.
    if (code === 'EPERM')
      return fail(
        'PING_MISSING',
        `ping (${spec.binary}) may not start (EPERM): it needs CAP_NET_RAW, which this container lacks: run it with --cap-add NET_RAW (Docker grants it by default, podman does not)`,
      );
    return fail('INTERNAL', `cannot start ping (${spec.binary}): ${code} ${run.spawnError.message}`.trim());
  }
  const out = parsePing(run.stdout);
  const sent = out.transmitted ?? spec.count;
  const replies = out.received ?? out.rtts.length;
  const lossRatio = sent > 0 ? Math.max(0, (sent - replies) / sent) : 1;
  const values: Record<string, number> = { replies, loss_ratio: lossRatio };
  const rtt = out.rtt ?? summarise(out.rtts);
  if (rtt) Object.assign(values, { rtt_min_ms: rtt.min, rtt_avg_ms: rtt.avg, rtt_max_ms: rtt.max });
  const lossPct = Math.round(lossRatio * 1000) / 10;

  if (run.aborted) {
    const got = out.rtts.length;
    return fail('TIMEOUT', `ping did not finish before the deadline (${got} of ${spec.count} replies so far); raise timeout`, {
      replies: got,
      ...(rtt ? { rtt_min_ms: rtt.min, rtt_avg_ms: rtt.avg, rtt_max_ms: rtt.max } : {}),
    });
  }
  const stderr = run.stderr.trim().replace(/\s+/g, ' ');
  if (out.transmitted === undefined) {
    // ping gave up before sending anything: its reason is on stderr.
    if (DNS_ERROR.test(stderr)) return fail('DNS', `cannot resolve ${spec.host}: ${stderr}`);
    return fail('INTERNAL', `ping exited ${run.exitCode ?? 'on a signal'} without sending: ${stderr || 'no message'}`);
  }
  if (replies === 0) {
    if (out.errorLine) return fail('CONNECT', `no echo reply from ${spec.host}: ${out.errorLine}`, values);
    return fail(
      'TIMEOUT',
      `no echo reply from ${spec.host} to ${sent} request${sent === 1 ? '' : 's'} within ${spec.replyTimeout} each (100% loss)`,
      values,
    );
  }
  if (spec.maxLoss !== undefined && lossPct > spec.maxLoss) {
    return fail('LOSS', `${lossPct}% packet loss to ${spec.host} (${replies} of ${sent} replies) is over maxLoss ${spec.maxLoss}%`, values);
  }
  if (spec.maxRtt !== undefined && rtt && rtt.avg > ms(spec.maxRtt)) {
    return fail('ASSERTION', `average round trip to ${spec.host} ${rtt.avg} ms is over maxRtt ${spec.maxRtt}`, values);
  }
  return { ok: true, values };
}

function summarise(rtts: number[]): { min: number; avg: number; max: number } | undefined {
  if (rtts.length === 0) return undefined;
  const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
  return { min: Math.min(...rtts), avg: Math.round(avg * 1000) / 1000, max: Math.max(...rtts) };
}

function clip(message: string): string {
  return message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 1)}…` : message;
}
