import dns from 'node:dns';
import { setMaxListeners } from 'node:events';
import { type Static, Type } from '@sinclair/typebox';
import { untilAborted } from '../lib/abort.js';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { checkHttp, type HttpSpec, http } from './http.js';
import { checkEntry, defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsProblem, shownUrl, urlAsWritten } from './url-credentials.js';

// The request and its judgement are the http kind's own fields, validated and defaulted as there.
const { url, method, headers, body, maxBodySize, insecure, ca, cert, key, followRedirects, expect } = http.schema.properties;

const schema = Type.Object(
  {
    /** The balancer, as users reach it. */
    url,
    /** The instances behind it, each checked at its own URL (path included). */
    instances: Type.Optional(Type.Array(url, { minItems: 1, expected: 'a list of instance URLs' })),
    /** `all`: every A and AAAA address of the URL's host is an instance, reached with the URL's Host and SNI. */
    resolve: Type.Optional(Type.Literal('all', { expected: 'all' })),
    /** A DNS server asked for the A/AAAA records (`IP`, `IP:port`, `[IPv6]:port`); the system resolver when left out. */
    resolver: Type.Optional(Type.String({ minLength: 1, expected: 'a resolver address: an IP, "IP:port" or "[IPv6]:port"' })),
    /** Requests sent through the balancer, each on a connection of its own. */
    requests: Type.Integer({ minimum: 1, maximum: 1000, default: 20, expected: 'a number of requests from 1 to 1000' }),
    /** How many of them may answer 5xx before the run fails. */
    max5xx: Type.Integer({ minimum: 0, default: 0, expected: 'a number of 5xx answers, 0 or more' }),
    /** Requests in flight at once, through the balancer and to the instances each. */
    concurrency: Type.Integer({ minimum: 1, maximum: 50, default: 4, expected: 'a number from 1 to 50' }),
    method,
    headers,
    body,
    maxBodySize,
    insecure,
    ca,
    cert,
    key,
    followRedirects,
    expect,
  },
  { additionalProperties: false },
);

type LoadBalancerSpec = Static<typeof schema>;

/** Any status: through the balancer only 5xx counts, and an answer of any other status is an answer. */
const ANY_STATUS: HttpSpec['expect'] = { status: ['1xx', '2xx', '3xx', '4xx', '5xx'], tls: false, httpsRedirect: false };

/** One instance's check, as kept in `details.instances`. */
interface InstanceOutcome {
  instance: string;
  ok: boolean;
  code?: FailureCode;
  message?: string;
  status?: number;
  latency_ms?: number;
}

export const loadBalancer = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.url),
    evidence: (spec, w) => checkEntry('loadBalancer', spec.id, urlAsWritten(spec.url), w),
  },
  values: () => ['instances_healthy', 'instances_total', 'lb_5xx', 'latency_ms'],
  check(spec) {
    const problems: SpecProblem[] = [];
    if ((spec.instances === undefined) === (spec.resolve === undefined)) {
      problems.push({ path: 'instances', message: 'expected either instances (a list of URLs) or resolve: all, not both or neither' });
    }
    if (spec.resolver !== undefined && spec.resolve === undefined) {
      problems.push({ path: 'resolver', message: 'expected resolve: all with a resolver' });
    }
    const resolver = spec.resolver === undefined ? undefined : resolverProblem(spec.resolver);
    if (resolver !== undefined) problems.push({ path: 'resolver', message: resolver });
    if (spec.max5xx > spec.requests) {
      problems.push({ path: 'max5xx', message: `expected at most requests (${spec.requests}) 5xx answers, got ${spec.max5xx}` });
    }
    // The http kind's own rules (status codes, patterns, certificates, credentials) hold here too.
    problems.push(...(http.check?.({ ...spec, ...httpSpec(spec, spec.url) }) ?? []));
    spec.instances?.forEach((u, i) => {
      const problem = credentialsProblem(u);
      if (problem !== undefined) problems.push({ path: `instances.${i}`, message: problem });
    });
    return problems;
  },
  async probe(spec, outer) {
    const start = outer.clock.now();
    // Each request in flight (two phases of `concurrency`) listens on the signal, twice while it connects:
    // they listen on this one, which listens once on the run's.
    const run = new AbortController();
    setMaxListeners(4 * spec.concurrency + 8, run.signal);
    const abort = () => run.abort(outer.signal.reason);
    if (outer.signal.aborted) abort();
    else outer.signal.addEventListener('abort', abort, { once: true });
    const ctx = { ...outer, signal: run.signal };
    try {
      return await measure(spec, ctx, start);
    } finally {
      outer.signal.removeEventListener('abort', abort);
    }
  },
});

async function measure(spec: LoadBalancerSpec, ctx: ProbeContext, start: number): Promise<ProbeResult> {
  const through = { ...httpSpec(spec, spec.url), followRedirects: 0, expect: ANY_STATUS };
  const found = await instancesOf(spec, ctx);
  if ('failure' in found) return verdict(spec, ctx, start, found.failure, []);
  // With resolve: all the host's addresses are the balancer too (DNS round robin, or one balancer
  // node each): the requests take them in turn, as clients spread over the records.
  const addresses = spec.resolve === undefined ? [] : found.flatMap((f) => f.address ?? []);
  const [answers, checked] = await Promise.all([
    eachLimited(spec.requests, spec.concurrency, ctx.signal, (i) =>
      checkHttp(through, ctx, addresses.length === 0 ? undefined : addresses[i % addresses.length]),
    ),
    eachLimited(found.length, spec.concurrency, ctx.signal, (i) => checkInstance(spec, found[i], ctx)),
  ]);
  return verdict(spec, ctx, start, checked, answers);
}

/** One instance: the URL it is checked at and, for `resolve: all`, the address connected to. */
interface Instance {
  name: string;
  url: string;
  address?: string;
}

async function checkInstance(spec: LoadBalancerSpec, instance: Instance | undefined, ctx: ProbeContext): Promise<InstanceOutcome> {
  if (instance === undefined) return { instance: '?', ok: false, message: 'not checked' };
  const r = await checkHttp(httpSpec(spec, instance.url), ctx, instance.address);
  return {
    instance: instance.name,
    ok: r.ok,
    ...(r.ok ? {} : { code: r.code, message: r.message }),
    ...(r.values.status === undefined ? {} : { status: r.values.status }),
    ...(r.values.latency_ms === undefined ? {} : { latency_ms: r.values.latency_ms }),
  };
}

/** The instances of a run: as listed, or every address the URL's host resolves to now. */
async function instancesOf(
  spec: LoadBalancerSpec,
  ctx: ProbeContext,
): Promise<Instance[] | { failure: { code: FailureCode; message: string } }> {
  if (spec.instances !== undefined) return spec.instances.map((u) => ({ name: shownUrl(u), url: u }));
  const host = new URL(spec.url).hostname.replace(/^\[|\]$/g, '');
  try {
    const addresses = spec.resolver === undefined ? await systemAddresses(host, ctx) : await askResolver(host, spec.resolver, ctx);
    if (addresses.length === 0) {
      return {
        failure: { code: 'DNS', message: `${host} has no A or AAAA record${spec.resolver === undefined ? '' : ` at ${spec.resolver}`}` },
      };
    }
    return addresses.map((address) => ({ name: address, url: spec.url, address }));
  } catch (err) {
    if (ctx.signal.aborted) return { failure: { code: 'TIMEOUT', message: `timed out resolving ${host}` } };
    const where = spec.resolver === undefined ? '' : ` at ${spec.resolver}`;
    return { failure: { code: 'DNS', message: `cannot resolve ${host}${where}: ${codeOf(err) || messageOf(err)}` } };
  }
}

/** What the system resolver gives (hosts file included), as the http kind connects: every address of both families. */
async function systemAddresses(host: string, ctx: ProbeContext): Promise<string[]> {
  // getaddrinfo cannot be cancelled; the run stops waiting for it at the deadline.
  const found = await untilAborted(ctx.signal, () => dns.promises.lookup(host, { all: true }));
  return [...new Set(found.map((a) => a.address))];
}

/** The A and AAAA records a DNS server answers; a family it has none of is no failure, both missing is. */
async function askResolver(host: string, server: string, ctx: ProbeContext): Promise<string[]> {
  const resolver = new dns.promises.Resolver({ timeout: Math.max(1, ctx.deadline - ctx.clock.now()), tries: 1 });
  resolver.setServers([server]);
  const cancel = () => resolver.cancel();
  ctx.signal.addEventListener('abort', cancel, { once: true });
  try {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const none = (r: PromiseSettledResult<string[]>) => r.status === 'rejected' && ['ENODATA', 'ENOTFOUND'].includes(codeOf(r.reason));
    for (const r of [v4, v6]) if (r.status === 'rejected' && !none(r)) throw r.reason;
    return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  } finally {
    ctx.signal.removeEventListener('abort', cancel);
  }
}

/** Judges a run: every instance healthy, at most `max5xx` answers of 5xx, every request answered. */
function verdict(
  spec: LoadBalancerSpec,
  ctx: ProbeContext,
  start: number,
  instances: Array<InstanceOutcome | undefined> | { code: FailureCode; message: string },
  answers: Array<ProbeResult | undefined>,
): ProbeResult {
  const statuses = new Map<number, number>();
  const latencies: number[] = [];
  const unanswered: string[] = [];
  let fiveXx = 0;
  for (const a of answers) {
    const status = a?.values.status;
    if (a === undefined || status === undefined) {
      unanswered.push(a?.message ?? 'not sent before the deadline');
      continue;
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status >= 500) fiveXx++;
    if (a.values.latency_ms !== undefined) latencies.push(a.values.latency_ms);
  }
  const resolved = Array.isArray(instances);
  const checked = resolved ? instances.map((o) => o ?? { instance: '?', ok: false, message: 'not checked before the deadline' }) : [];
  const healthy = checked.filter((o) => o.ok).length;
  const values: Record<string, number> = {
    instances_healthy: healthy,
    instances_total: checked.length,
    lb_5xx: fiveXx,
    ...(latencies.length > 0 ? { latency_ms: median(latencies) } : {}),
  };
  const details = { instances: checked, balancer: { statuses: Object.fromEntries(statuses), unanswered: unanswered.length } };

  // The unhealthy instances first: they are usually why the balancer answered 5xx.
  const parts = checked.filter((o) => !o.ok).map((o) => `${o.instance}: ${o.message ?? o.code}`);
  if (!resolved) parts.unshift(instances.message);
  const codes = [...statuses].filter(([s]) => s >= 500).sort(([a], [b]) => a - b);
  const got = codes.length === 1 ? `${codes[0]?.[0]}` : codes.map(([s, n]) => `${s} (${n})`).join(', ');
  if (fiveXx > 0 && (fiveXx > spec.max5xx || parts.length > 0 || unanswered.length > 0)) {
    const allowed = spec.max5xx > 0 ? `, ${spec.max5xx} allowed` : '';
    parts.push(`${fiveXx} of ${spec.requests} requests through the balancer got ${got}${allowed}`);
  }
  if (unanswered.length > 0) {
    parts.push(`${unanswered.length} of ${spec.requests} requests through the balancer got no answer (${unanswered[0]})`);
  }
  if (parts.length === 0 && fiveXx <= spec.max5xx) return { ok: true, values, details };

  let code: FailureCode;
  if (ctx.signal.aborted) code = 'TIMEOUT';
  else if (!resolved) code = instances.code;
  else if (unanswered.length > 0) code = answers.find((a) => a !== undefined && a.values.status === undefined)?.code ?? 'CONNECT';
  else if (fiveXx > spec.max5xx) code = 'HTTP_STATUS';
  else code = 'UNHEALTHY_INSTANCE';
  const prefix = code === 'TIMEOUT' ? `timed out after ${formatDuration(ctx.clock.now() - start)}: ` : '';
  return { ok: false, code, message: `${prefix}${parts.join('; ')}`, values, details };
}

/** The http definition an instance (or the balancer) is checked with: this definition's request and expect block. */
function httpSpec(spec: LoadBalancerSpec, target: string): HttpSpec {
  return {
    url: target,
    method: spec.method,
    headers: spec.headers,
    maxBodySize: spec.maxBodySize,
    insecure: spec.insecure,
    followRedirects: spec.followRedirects,
    expect: spec.expect,
    http2: false,
    extract: {},
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.ca === undefined ? {} : { ca: spec.ca }),
    ...(spec.cert === undefined ? {} : { cert: spec.cert, key: spec.key }),
  };
}

/**
 * Runs `run(0 … count-1)` with at most `limit` at once. Once `signal` aborts nothing new starts:
 * those left out stay `undefined`.
 */
async function eachLimited<R>(
  count: number,
  limit: number,
  signal: AbortSignal,
  run: (i: number) => Promise<R>,
): Promise<Array<R | undefined>> {
  const results: Array<R | undefined> = new Array(count).fill(undefined);
  let next = 0;
  const worker = async () => {
    while (next < count && !signal.aborted) {
      const i = next++;
      results[i] = await run(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

function median(ns: number[]): number {
  const sorted = [...ns].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Why Node's resolver will not take `server`; undefined when it will. */
function resolverProblem(server: string): string | undefined {
  try {
    new dns.Resolver().setServers([server]);
    return undefined;
  } catch {
    return `expected a resolver address: an IP, "IP:port" or "[IPv6]:port", got ${JSON.stringify(server)}`;
  }
}
