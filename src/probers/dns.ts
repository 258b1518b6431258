import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { Duration } from '../lib/schema.js';
import { type Answer, CLASS_CODE, presentation, query, RCODE_NAME, type RecordType, type ServerAddress, TYPE_CODE } from './dns-wire.js';
import { endpoint } from './sockets.js';
import { defineProber, type ProbeBase, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const { Resolver } = dnsPromises;
type Resolver = InstanceType<typeof Resolver>;

/** blackbox_exporter's validate_*_rrs, in vigil's words. */
const Validator = Type.Object(
  {
    /** Every record must match each of these (fail_if_not_matches_regexp); no records fails too. */
    matches: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, expected: 'a list of regular expressions' })),
    /** No record may match any of these (fail_if_matches_regexp). */
    notMatches: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, expected: 'a list of regular expressions' })),
    /** At least one record must match each of these (fail_if_none_matches_regexp). */
    someMatch: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, expected: 'a list of regular expressions' })),
  },
  { additionalProperties: false, minProperties: 1, expected: 'an object with matches, notMatches and/or someMatch' },
);
type ValidatorSpec = Static<typeof Validator>;
const SECTIONS = ['answer', 'authority', 'additional'] as const;
type Section = (typeof SECTIONS)[number];

const schema = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9_*-]{1,63}(\\.[A-Za-z0-9_-]{1,63})*\\.?$',
      expected: 'a domain name like api.example.com',
    }),
    type: Type.Union(
      (['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'NS', 'SOA', 'SRV', 'CAA', 'PTR'] as const).map((t) => Type.Literal(t)),
      {
        default: 'A',
        expected: 'one of A, AAAA, CNAME, TXT, MX, NS, SOA, SRV, CAA, PTR',
      },
    ),
    /** IN, or CH for a server's `version.bind`-style TXT answers about itself. */
    class: Type.Union([Type.Literal('IN'), Type.Literal('CH')], { default: 'IN', expected: 'IN or CH' }),
    /**
     * The values the record must hold, all of them and nothing else (an SOA's: its serial). Without
     * it, resolvers must agree with each other: on the highest SOA serial, on what the authoritative
     * servers answer, or else on what most of them answer.
     */
    expect: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, expected: 'a list of the values the record must hold' }),
    ),
    /** The RCODEs that count as an answer; [NXDOMAIN] asserts the name does not exist. */
    validRcodes: Type.Array(Type.Union(Object.values(RCODE_NAME).map((r) => Type.Literal(r))), {
      minItems: 1,
      default: ['NOERROR'],
      expected: `a list of RCODEs: ${Object.values(RCODE_NAME).join(', ')}`,
    }),
    /** Regular expressions every record of a section is held to, in presentation form (`name\tTTL\tIN\tA\tdata`). */
    validate: Type.Optional(
      Type.Object(
        { answer: Type.Optional(Validator), authority: Type.Optional(Validator), additional: Type.Optional(Validator) },
        { additionalProperties: false, minProperties: 1, expected: 'an object with answer, authority and/or additional' },
      ),
    ),
    /** The RD bit; false asks a resolver for what it holds without recursing (an authoritative server ignores it). */
    recursion: Type.Boolean({ default: true, expected: 'true or false' }),
    /** udp falls back to TCP when the answer is truncated; tcp asks over TCP only. */
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp')], { default: 'udp', expected: 'udp or tcp' }),
    resolvers: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      default: ['system'],
      expected: 'a list of resolvers: authoritative, system, an IP, "IP:port" or "[IPv6]:port"',
    }),
    /** Seconds; a longer TTL fails the run with DNS_TTL. */
    maxTtl: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, expected: 'a TTL in seconds, like 300' })),
    /** Share of the resolvers asked that must answer exactly `expect`. */
    quorum: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 1,
      expected: 'a share of resolvers above 0 and at most 1, like 1.0 or 0.8',
    }),
    /** How long after a change resolvers may still serve the old answer before the run fails. */
    propagationDeadline: Duration('5m'),
    /** Each resolver's own deadline (the run's timeout still bounds them all). */
    resolverTimeout: Duration('2s'),
    /** Where `authoritative` looks up the zone's NS records and their addresses; the system resolver by default. */
    bootstrap: Type.Optional(Type.String({ minLength: 1, expected: 'a resolver address: an IP, "IP:port" or "[IPv6]:port"' })),
    /** The port the zone's nameservers are asked on. */
    authoritativePort: Type.Integer({ minimum: 1, maximum: 65_535, default: 53, expected: 'a port number 1-65535' }),
  },
  { additionalProperties: false },
);

/** The `dns` kind's own definition fields. */
export type DnsSpec = Static<typeof schema>;
type Spec = ProbeBase & DnsSpec;

/** What one resolver said in one run, as kept in `details.resolvers`. */
export interface ResolverReport {
  /** The record values, normalised for display (TXT chunks joined, MX as "priority host"). */
  answers: string[];
  /** Highest TTL among the answer records, in seconds, when the resolver's answer carried one. */
  ttl?: number;
  latency_ms: number;
  /** NXDOMAIN, NODATA, SERVFAIL, REFUSED, TIMEOUT, CONNREFUSED, … when it gave no usable answer. */
  error?: string;
  /** The answer's RCODE, when an answer came. */
  rcode?: string;
  /** How many records each section held (the OPT pseudo-record not counted). */
  sections?: Record<Section, number>;
  /** The SOA serial, for SOA queries. */
  serial?: number;
  /** Why the answer failed `validate`: the section, the record and the rule. */
  invalid?: string;
  /** How the answer came: UDP, or TCP as asked or after a truncated UDP answer. */
  transport?: 'udp' | 'tcp';
  /** Why, when the error needs more words (e.g. no nameservers found). */
  reason?: string;
  /** The server(s) actually asked. */
  server?: string;
  /** Whether it answered, passed `validate` and its answer set equals the one expected. */
  matches: boolean;
}

/** One resolver's outcome, before it is judged. */
interface Asked {
  label: string;
  authoritative: boolean;
  report: Omit<ResolverReport, 'matches'>;
}

/** Where one resolver entry sends its queries. */
interface Target {
  label: string;
  authoritative: boolean;
  /** Asked in order until one answers. */
  servers: ServerAddress[];
}

/** What a `dns` probe keeps across runs to time how long a change takes to propagate. */
interface DnsState {
  /** The normalised `expect` of the last run: a new one is a change. */
  expect: string[];
  /** The last authoritative answer set, or the `expect` set when no `authoritative` resolver is asked. */
  reference?: string[];
  /** The answer before the last change: what lagging resolvers still serve. */
  previous?: string[];
  /** When the last change was noticed (epoch ms). */
  changedAt?: number;
  /** Seconds from that change until the quorum agreed; set once it did. */
  propagationS?: number;
}

/** Node's resolver error codes, in the words DNS people use. */
const ERROR_NAMES: Record<string, string> = {
  ENOTFOUND: 'NXDOMAIN',
  ENODATA: 'NODATA',
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  ETIMEOUT: 'TIMEOUT',
  ECANCELLED: 'TIMEOUT',
  ECONNREFUSED: 'CONNREFUSED',
  EFORMERR: 'FORMERR',
  ENOTIMP: 'NOTIMP',
  EBADRESP: 'BADRESP',
};
/** Answers that say "no such record" rather than "could not ask": a real, if empty, answer. */
const NEGATIVE = new Set(['NXDOMAIN', 'NODATA']);
/** Bounds the work one `authoritative` entry can fan out to. */
const MAX_NAMESERVERS = 8;
/** Kept back from the run's deadline so the result is returned before the scheduler aborts the run. */
const DEADLINE_MARGIN_MS = 25;

export const dns = defineProber({
  schema,
  report: {
    target: (spec) => `${spec.name}${spec.class === 'CH' ? ' CH' : ''} ${spec.type}`,
    latency: true,
    evidence(spec, w, targets) {
      const prop = w.values.propagation_s;
      const ttl = w.values.max_ttl_s;
      return {
        section: 'dns',
        item: {
          probeId: spec.id,
          name: `${spec.name}${spec.class === 'CH' ? ' CH' : ''} ${spec.type}`,
          propagationS: prop?.max ?? null,
          maxTtlS: ttl?.max ?? null,
          propagatedRatio: w.values.propagated_ratio?.last ?? null,
          ok:
            w.runs === 0
              ? null
              : (ttl === undefined || ttl.max <= targets.dnsMaxTtlS) &&
                (prop === undefined || prop.max <= targets.dnsPropagationS) &&
                w.last?.ok === true,
        },
      };
    },
  },
  values: (spec) => [
    'propagated_ratio',
    'resolvers_ok',
    'resolvers_asked',
    'max_ttl_s',
    'propagation_s',
    ...(spec.type === 'SOA' ? ['soa_serial'] : []),
  ],
  check(spec) {
    const problems: SpecProblem[] = [];
    const seen = new Set<string>();
    spec.resolvers.forEach((r, i) => {
      if (r !== 'authoritative' && r !== 'system' && parseAddress(r) === undefined) {
        problems.push({
          path: `resolvers[${i}]`,
          message: `expected authoritative, system, an IP, "IP:port" or "[IPv6]:port", got ${JSON.stringify(r)}`,
        });
      }
      if (seen.has(r))
        problems.push({ path: `resolvers[${i}]`, message: `expected each resolver once; ${JSON.stringify(r)} is listed twice` });
      seen.add(r);
    });
    if (spec.bootstrap !== undefined && spec.bootstrap !== 'system' && parseAddress(spec.bootstrap) === undefined) {
      problems.push({ path: 'bootstrap', message: `expected an IP, "IP:port" or "[IPv6]:port", got ${JSON.stringify(spec.bootstrap)}` });
    }
    spec.expect?.forEach((v, i) => {
      const wrong = wrongValue(spec.type, v.trim());
      if (wrong) problems.push({ path: `expect[${i}]`, message: `expected ${wrong}, got ${JSON.stringify(v)}` });
    });
    if (spec.expect !== undefined && !spec.validRcodes.includes('NOERROR')) {
      problems.push({
        path: 'expect',
        message: `expected no expect when validRcodes (${spec.validRcodes.join(', ')}) leaves out NOERROR: only a NOERROR answer carries records`,
      });
    }
    spec.validRcodes.forEach((r, i) => {
      if (spec.validRcodes.indexOf(r) !== i)
        problems.push({ path: `validRcodes[${i}]`, message: `expected each RCODE once; ${r} is listed twice` });
    });
    for (const section of SECTIONS) {
      const rules = spec.validate?.[section];
      for (const rule of ['matches', 'notMatches', 'someMatch'] as const) {
        rules?.[rule]?.forEach((source, i) => {
          try {
            new RegExp(source);
          } catch (err) {
            problems.push({ path: `validate.${section}.${rule}[${i}]`, message: `expected a regular expression: ${messageOf(err)}` });
          }
        });
      }
    }
    if (spec.class === 'CH' && spec.resolvers.includes('authoritative')) {
      problems.push({
        path: 'resolvers',
        message: 'expected server addresses for class CH: authoritative finds a zone’s nameservers, and CH names have none',
      });
    }
    if (spec.name.replace(/\.$/, '').length > 253)
      problems.push({ path: 'name', message: 'expected a domain name of at most 253 characters' });
    if (ms(spec.resolverTimeout) >= ms(spec.timeout)) {
      problems.push({
        path: 'resolverTimeout',
        message: `expected less than the probe's timeout (${spec.timeout}) so one silent resolver cannot time the whole run out, got ${spec.resolverTimeout}`,
      });
    }
    return problems;
  },
  async probe(spec, ctx) {
    const asked = (
      await Promise.all(
        spec.resolvers.map((entry) =>
          entry === 'authoritative' ? askAuthoritative(spec, ctx) : askOne(entry, spec, ctx).then((a) => [a]),
        ),
      )
    ).flat();
    const prev = readState(ctx);
    const { result, state } = judge(spec, asked, prev, ctx.clock.now());
    if (JSON.stringify(state) !== JSON.stringify(prev)) ctx.state.set(state);
    return result;
  },
});

/** Asks one configured resolver (an address or `system`). Never throws. */
async function askOne(entry: string, spec: Spec, ctx: ProbeContext): Promise<Asked> {
  const listed = entry === 'system' ? new Resolver().getServers() : [entry];
  const servers = listed.map(parseAddress).filter((a): a is ServerAddress => a !== undefined);
  if (servers.length === 0) {
    const reason = entry === 'system' ? 'the host has no resolver configured' : `not a resolver address: ${entry}`;
    return { label: entry, authoritative: false, report: { answers: [], latency_ms: 0, error: 'BAD_RESOLVER', reason } };
  }
  return ask({ label: entry, authoritative: false, servers }, spec, ctx);
}

/** Finds the zone's nameservers and asks each directly, as its own resolver. Never throws. */
async function askAuthoritative(spec: Spec, ctx: ProbeContext): Promise<Asked[]> {
  const start = ctx.clock.now();
  const found = await findNameservers(spec, ctx);
  if ('error' in found) {
    return [
      {
        label: 'authoritative',
        authoritative: true,
        report: { answers: [], latency_ms: ctx.clock.now() - start, error: found.error, reason: found.reason },
      },
    ];
  }
  return Promise.all(
    found.nameservers.map((ns) => {
      const label = `authoritative ${ns.host}`;
      const first = ns.addresses[0];
      if (first === undefined) {
        const reason = `nameserver ${ns.host} of ${found.zone} has no address`;
        return { label, authoritative: true, report: { answers: [], latency_ms: 0, error: 'NO_ADDRESS', reason } };
      }
      const servers = ns.addresses.map((host) => ({ host, port: spec.authoritativePort }));
      return ask({ label, authoritative: true, servers }, spec, ctx);
    }),
  );
}

type Nameservers = { zone: string; nameservers: Array<{ host: string; addresses: string[] }> } | { error: string; reason: string };

/** Walks up from the name (api.example.com, example.com, com) until a level has NS records. */
async function findNameservers(spec: Spec, ctx: ProbeContext): Promise<Nameservers> {
  const resolver = newResolver(spec);
  const limit = startLimit(ctx, ms(spec.resolverTimeout), () => resolver.cancel());
  const via = spec.bootstrap === undefined || spec.bootstrap === 'system' ? 'the system resolver' : spec.bootstrap;
  let zone = bare(spec.name);
  try {
    if (spec.bootstrap !== undefined && spec.bootstrap !== 'system') {
      const address = parseAddress(spec.bootstrap);
      if (address === undefined) return { error: 'BAD_RESOLVER', reason: `bootstrap is not a resolver address: ${spec.bootstrap}` };
      resolver.setServers([serverString(address)]);
    }
    let hosts: string[] | undefined;
    while (hosts === undefined) {
      try {
        hosts = await untilAbort(resolver.resolveNs(zone), limit.signal);
      } catch (err) {
        const code = errorName(err, limit.signal);
        const parent = zone.indexOf('.');
        if (!NEGATIVE.has(code)) throw err;
        if (parent < 0) return { error: 'NO_NAMESERVERS', reason: `no NS records for ${bare(spec.name)} or its parent domains via ${via}` };
        zone = zone.slice(parent + 1);
      }
    }
    const unique = [...new Set(hosts.map(bare))].sort().slice(0, MAX_NAMESERVERS);
    if (unique.length === 0) return { error: 'NO_NAMESERVERS', reason: `${zone} has an empty NS record set at ${via}` };
    const nameservers = await Promise.all(
      unique.map(async (host) => ({ host, addresses: await addressesOf(resolver, host, limit.signal) })),
    );
    return { zone, nameservers };
  } catch (err) {
    const error = errorName(err, limit.signal);
    return { error, reason: `cannot find the nameservers of ${zone} via ${via}: ${error}` };
  } finally {
    limit.release();
  }
}

/** IPv4 addresses of a nameserver, or its IPv6 ones when it has none. */
async function addressesOf(resolver: Resolver, host: string, signal: AbortSignal): Promise<string[]> {
  const v4 = await untilAbort(resolver.resolve4(host), signal).catch(() => []);
  if (v4.length > 0 || signal.aborted) return v4;
  return untilAbort(resolver.resolve6(host), signal).catch(() => []);
}

/** One query to one resolver (its servers in turn until one answers), within its own deadline. Never throws. */
async function ask(target: Target, spec: Spec, ctx: ProbeContext): Promise<Asked> {
  const limit = startLimit(ctx, ms(spec.resolverTimeout), () => {});
  const start = ctx.clock.now();
  const base = { label: target.label, authoritative: target.authoritative };
  const opts = { class: spec.class, recursion: spec.recursion, transport: spec.transport };
  let failure: unknown;
  try {
    for (const address of target.servers) {
      const server = serverString(address);
      try {
        const answer = await query(address, bare(spec.name), spec.type, limit.signal, opts);
        return { ...base, report: { ...readAnswer(answer, spec), latency_ms: ctx.clock.now() - start, server } };
      } catch (err) {
        failure = err;
        if (limit.signal.aborted) break;
      }
    }
    const error = errorName(failure, limit.signal);
    // A failed TCP retry of a truncated answer needs its words: "TRUNCATED" alone does not say what to fix.
    const reason = codeOf(failure) === 'TRUNCATED' && !limit.signal.aborted ? messageOf(failure) : undefined;
    const server = target.servers.map(serverString).join(', ');
    return { ...base, report: { answers: [], latency_ms: ctx.clock.now() - start, error, ...(reason ? { reason } : {}), server } };
  } finally {
    limit.release();
  }
}

/** What one answer says, judged by `validRcodes` and `validate`; NOERROR without records of the type is NODATA. */
function readAnswer(answer: Answer, spec: Spec): Omit<ResolverReport, 'matches' | 'latency_ms'> {
  const rcode = RCODE_NAME[answer.rcode] ?? `RCODE${answer.rcode}`;
  const wanted = answer.answers.filter((r) => r.type === TYPE_CODE[spec.type] && r.class === CLASS_CODE[spec.class]);
  const sections = { answer: answer.answers.length, authority: answer.authority.length, additional: answer.additional.length };
  const base = { rcode, sections, transport: answer.transport };
  if (!(spec.validRcodes as string[]).includes(rcode)) {
    return { ...base, answers: [], error: rcode };
  }
  const invalid = spec.validate === undefined ? undefined : validate(spec.validate, answer);
  const found = {
    ...base,
    answers: wanted.map((r) => r.value),
    ...(wanted.length > 0 ? { ttl: Math.max(...wanted.map((r) => r.ttl)) } : {}),
    ...(spec.type === 'SOA' && wanted[0]?.serial !== undefined ? { serial: wanted[0].serial } : {}),
    ...(invalid === undefined ? {} : { invalid }),
  };
  if (rcode === 'NOERROR' && wanted.length === 0) return { ...found, error: 'NODATA' };
  return found;
}

/** The first rule a section breaks, said with the record that breaks it; undefined when all hold. */
function validate(rules: NonNullable<Spec['validate']>, answer: Answer): string | undefined {
  const records: Record<Section, string[]> = {
    answer: answer.answers.map(presentation),
    authority: answer.authority.map(presentation),
    additional: answer.additional.map(presentation),
  };
  for (const section of SECTIONS) {
    const rule: ValidatorSpec | undefined = rules[section];
    if (rule === undefined) continue;
    const lines = records[section];
    const show = (line: string) => JSON.stringify(line.replaceAll('\t', ' '));
    for (const source of rule.notMatches ?? []) {
      const re = new RegExp(source);
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return `${section} record ${show(hit)} matches notMatches /${source}/`;
    }
    for (const source of rule.matches ?? []) {
      const re = new RegExp(source);
      if (lines.length === 0) return `${section} section is empty, and matches /${source}/ needs records`;
      const miss = lines.find((l) => !re.test(l));
      if (miss !== undefined) return `${section} record ${show(miss)} does not match /${source}/`;
    }
    for (const source of rule.someMatch ?? []) {
      const re = new RegExp(source);
      if (!lines.some((l) => re.test(l))) return `no ${section} record matches someMatch /${source}/ (${lines.length} records)`;
    }
  }
  return undefined;
}

function newResolver(spec: Spec): Resolver {
  return new Resolver({ timeout: ms(spec.resolverTimeout), tries: 1 });
}

/**
 * A deadline of its own for one resolver: `ms` from now, never past the run's, and aborted with the
 * run. `onAbort` cancels that resolver's queries; `release` frees the timer and any straggling query.
 */
function startLimit(ctx: ProbeContext, budget: number, onAbort: () => void) {
  const controller = new AbortController();
  const left = Math.min(budget, ctx.deadline - ctx.clock.now() - DEADLINE_MARGIN_MS);
  const timer = ctx.clock.setTimeout(() => controller.abort(), Math.max(0, left));
  const fromRun = () => controller.abort();
  ctx.signal.addEventListener('abort', fromRun, { once: true });
  if (ctx.signal.aborted) controller.abort();
  controller.signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    release() {
      ctx.clock.clearTimeout(timer);
      ctx.signal.removeEventListener('abort', fromRun);
      controller.signal.removeEventListener('abort', onAbort);
      controller.abort(); // stops a TTL query still waiting after the main answer settled
    },
  };
}

/** Settles with `work`, or rejects with TIMEOUT when `signal` aborts first (Resolver#cancel is only a courtesy). */
function untilAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(Object.assign(new Error('timed out'), { code: 'TIMEOUT' }));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(Object.assign(new Error('timed out'), { code: 'TIMEOUT' }));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function errorName(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'TIMEOUT';
  const code = codeOf(err) || 'ERROR';
  if (code === 'ERR_INVALID_IP_ADDRESS') return 'BAD_RESOLVER';
  return ERROR_NAMES[code] ?? code;
}

/** Judges one run's answers against the definition and the state of earlier runs. Pure. */
function judge(spec: Spec, asked: Asked[], prev: DnsState | undefined, now: number): { result: ProbeResult; state: DnsState } {
  const keyOf = comparer(spec);
  const answered = asked.filter((a) => a.report.error === undefined);
  const hasAuthoritative = spec.resolvers.includes('authoritative');
  const authAnswers = asked
    .filter((a) => a.authoritative && (a.report.error === undefined || NEGATIVE.has(a.report.error)))
    .map((a) => keyOf(a.report.answers));
  const authReference = hasAuthoritative ? pickReference(authAnswers, prev) : undefined;
  const expectKeys = spec.expect === undefined ? undefined : keyOf(spec.expect);
  // Without `expect` the resolvers are held to each other: the answer they should all give.
  const wanted = expectKeys ?? (spec.type === 'SOA' ? highestSerial(answered) : (authReference ?? mostCommon(answered, keyOf)));
  const state = advance(prev, expectKeys ?? [], authReference ?? wanted, now);

  const resolvers: Record<string, ResolverReport> = {};
  for (const a of asked) {
    const { error, invalid, answers } = a.report;
    resolvers[a.label] = { ...a.report, matches: error === undefined && invalid === undefined && same(keyOf(answers), wanted) };
  }
  const total = asked.length;
  const matching = Object.values(resolvers).filter((r) => r.matches).length;
  const ttls = answered.map((a) => a.report.ttl).filter((t): t is number => t !== undefined);
  const serials = answered.map((a) => a.report.serial).filter((t): t is number => t !== undefined);
  const values: Record<string, number> = {
    propagated_ratio: total === 0 ? 0 : matching / total,
    resolvers_ok: answered.length,
    resolvers_asked: total,
  };
  if (ttls.length > 0) values.max_ttl_s = Math.max(...ttls);
  if (serials.length > 0) values.soa_serial = Math.max(...serials);

  const agree = total > 0 && matching >= spec.quorum * total - 1e-9;
  if (agree && state.changedAt !== undefined && state.propagationS === undefined) state.propagationS = (now - state.changedAt) / 1000;
  if (state.propagationS !== undefined) values.propagation_s = state.propagationS;

  const details: Record<string, unknown> = { resolvers };
  if (state.changedAt !== undefined) details.changedAt = new Date(state.changedAt).toISOString();
  const record = recordName(spec);
  const fail = (code: string, message: string): { result: ProbeResult; state: DnsState } => ({
    result: { ok: false, code, message, values, details },
    state,
  });

  if (answered.length === 0) {
    const errors = asked.map((a) => a.report.error ?? 'ERROR');
    const defaultRcodes = spec.validRcodes.length === 1 && spec.validRcodes[0] === 'NOERROR';
    if (defaultRcodes && total > 0 && errors.every((e) => e === 'NXDOMAIN')) {
      return fail(
        'DNS',
        `${bare(spec.name)} does not exist: NXDOMAIN from all ${total} resolvers asked (${asked.map((a) => a.label).join(', ')})`,
      );
    }
    const list = asked.map((a) => `${a.label} ${a.report.error}${a.report.reason ? ` (${a.report.reason})` : ''}`).join(', ');
    const how = defaultRcodes ? '' : ` with ${spec.validRcodes.join(' or ')}`;
    return fail('DNS', `no resolver answered ${record}${how}: ${list}`);
  }

  if (!agree) {
    const others = asked.filter((a) => !resolvers[a.label]?.matches);
    if (others.every((a) => a.report.error === undefined && a.report.invalid !== undefined)) {
      return fail('DNS_VALIDATE', `${record}: ${others.map((a) => `${a.label}: ${a.report.invalid}`).join('; ')}`);
    }
    const wantedText = spec.expect !== undefined ? show(spec.expect) : spec.type === 'SOA' ? `serial ${show(wanted)}` : show(wanted);
    const agreeText = `${matching} of ${total} resolvers answer ${wantedText} (quorum ${percent(spec.quorum)})`;
    const changedAt = state.changedAt;
    const pending = changedAt !== undefined && state.propagationS === undefined;
    if (pending && now - changedAt < ms(spec.propagationDeadline)) {
      details.propagating = true;
    } else if (pending) {
      const since = formatDuration(now - changedAt);
      return fail(
        'DNS_PROPAGATION',
        `${record} changed ${since} ago and has not propagated within ${spec.propagationDeadline}: ${describe(others, keyOf, state.previous)}; ${agreeText}`,
      );
    } else {
      return fail('DNS_MISMATCH', `${record}: ${agreeText}; ${describe(others, keyOf, undefined)}`);
    }
  }

  if (spec.maxTtl !== undefined) {
    const limit = spec.maxTtl;
    const over = answered.filter((a) => (a.report.ttl ?? 0) > limit).sort((x, y) => (y.report.ttl ?? 0) - (x.report.ttl ?? 0));
    if (over.length > 0) {
      const where = over.map((a) => `${a.report.ttl} s at ${a.label}`).join(', ');
      return fail('DNS_TTL', `${record} TTL is above maxTtl ${limit} s: ${where} (lower the record's TTL so a change propagates quickly)`);
    }
  }
  return { result: { ok: true, values, details }, state };
}

/**
 * The authoritative answer set this run. With several nameservers a lagging secondary must not
 * flip it back and forth: a set counts as new only if it is not the one we just left, unless every
 * nameserver now serves it (a genuine rollback).
 */
function pickReference(authAnswers: string[][], prev: DnsState | undefined): string[] | undefined {
  const current = prev?.reference;
  const first = authAnswers[0];
  if (first === undefined) return current;
  if (current === undefined) return first;
  const unanimous = authAnswers.every((a) => same(a, first));
  const fresh = authAnswers.find((a) => !same(a, current) && (unanimous || prev?.previous === undefined || !same(a, prev.previous)));
  return fresh ?? current;
}

/** The next state: a changed `expect` or authoritative answer restarts the propagation clock. */
function advance(prev: DnsState | undefined, expect: string[], reference: string[] | undefined, now: number): DnsState {
  if (prev === undefined) return { expect, ...(reference ? { reference } : {}) };
  const referenceChanged = reference !== undefined && prev.reference !== undefined && !same(reference, prev.reference);
  if (referenceChanged || !same(prev.expect, expect)) {
    const previous = referenceChanged ? prev.reference : prev.expect;
    return { expect, ...(reference ? { reference } : {}), ...(previous ? { previous } : {}), changedAt: now };
  }
  return { ...prev, ...(reference ? { reference } : {}) };
}

function readState(ctx: ProbeContext): DnsState | undefined {
  const s = ctx.state.get<DnsState>();
  const isList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  // State written by another version (or by hand) is dropped rather than trusted.
  if (s === null || typeof s !== 'object' || !isList(s.expect)) return undefined;
  if ((s.reference !== undefined && !isList(s.reference)) || (s.previous !== undefined && !isList(s.previous))) return undefined;
  if (s.changedAt !== undefined && typeof s.changedAt !== 'number') return undefined;
  if (s.propagationS !== undefined && typeof s.propagationS !== 'number') return undefined;
  return s;
}

/** Names the resolvers that disagree, grouped by what they answered; the old answer is called so. */
function describe(others: Asked[], keyOf: (v: string[]) => string[], previous: string[] | undefined): string {
  const groups = new Map<string, { labels: string[]; text: string }>();
  for (const a of others) {
    const { error, answers } = a.report;
    const keys = keyOf(answers);
    const old = previous !== undefined && error === undefined && same(keys, previous);
    const shown = a.report.serial !== undefined ? `serial ${a.report.serial}` : show(answers);
    const text =
      error !== undefined
        ? `: ${error}`
        : a.report.invalid !== undefined
          ? `: ${a.report.invalid}`
          : old
            ? ` still serving the old answer ${shown}`
            : ` ${shown}`;
    const id = `${error ?? ''}|${a.report.invalid ?? ''}|${keys.join('\n')}`;
    const g = groups.get(id) ?? { labels: [], text };
    g.labels.push(a.label);
    groups.set(id, g);
  }
  return [...groups.values()]
    .map((g) => {
      const who = g.labels.join(', ');
      if (g.text.startsWith(':') || g.text.startsWith(' still')) return `${who}${g.text}`;
      return `${who} ${g.labels.length === 1 ? 'answers' : 'answer'}${g.text}`;
    })
    .join('; ');
}

/**
 * How answers compare with `expect`: names case-insensitively without the trailing dot, IPv6 in
 * canonical form, TXT exactly (its bytes are the value). MX compares hosts only when `expect`
 * gives no priorities.
 */
function comparer(spec: Spec): (values: string[]) => string[] {
  const mxHostsOnly = spec.type === 'MX' && spec.expect !== undefined && spec.expect.every((v) => !/^\d+\s/.test(v.trim()));
  const one = (v: string): string => {
    switch (spec.type) {
      case 'TXT':
        return v;
      case 'A':
        return v.trim();
      case 'AAAA':
        return canonicalIpv6(v.trim());
      case 'SOA': {
        // An SOA is compared by its serial: that is what a zone change moves.
        const t = v.trim();
        return /^\d+$/.test(t) ? String(Number(t)) : (t.split(/\s+/)[2] ?? t);
      }
      case 'SRV': {
        const parts = v.trim().split(/\s+/);
        const host = parts.pop() ?? '';
        return [...parts.map((p) => String(Number(p))), bare(host)].join(' ');
      }
      case 'CAA': {
        const m = /^(\d+)\s+([A-Za-z0-9]+)\s+"?(.*?)"?$/.exec(v.trim());
        return m === null ? v.trim() : `${Number(m[1])} ${(m[2] ?? '').toLowerCase()} ${m[3]}`;
      }
      case 'MX': {
        const m = /^(\d+)\s+(\S+)$/.exec(v.trim());
        if (m === null) return bare(v);
        const host = bare(m[2] ?? '');
        return mxHostsOnly ? host : `${Number(m[1])} ${host}`;
      }
      default:
        return bare(v);
    }
  };
  return (values) => [...new Set(values.map(one))].sort();
}

/** The highest SOA serial any resolver answered: secondaries lag the primary, never lead it. */
function highestSerial(answered: Asked[]): string[] {
  const serials = answered.map((a) => a.report.serial).filter((s): s is number => s !== undefined);
  return serials.length === 0 ? [] : [String(Math.max(...serials))];
}

/** The answer set most resolvers give; on a tie, the one listed first. */
function mostCommon(answered: Asked[], keyOf: (v: string[]) => string[]): string[] {
  const counts = new Map<string, { keys: string[]; n: number }>();
  for (const a of answered) {
    const keys = keyOf(a.report.answers);
    const id = keys.join('\n');
    const c = counts.get(id) ?? { keys, n: 0 };
    c.n++;
    counts.set(id, c);
  }
  let best: { keys: string[]; n: number } | undefined;
  for (const c of counts.values()) if (best === undefined || c.n > best.n) best = c;
  return best?.keys ?? [];
}

/** How the record is named in targets and messages: `api.example.com A`, `version.bind CH TXT`. */
function recordName(spec: Pick<Spec, 'name' | 'type' | 'class'>): string {
  return `${bare(spec.name)}${spec.class === 'CH' ? ' CH' : ''} ${spec.type}`;
}

/** What is wrong with an `expect` value for the record type, or undefined when it fits. */
function wrongValue(type: RecordType, v: string): string | undefined {
  switch (type) {
    case 'A':
    case 'AAAA':
      return isIP(v) === (type === 'A' ? 4 : 6) ? undefined : `an IPv${type === 'A' ? 4 : 6} address (the record type is ${type})`;
    case 'MX':
      return /^(\d+\s+)?[^\s]+$/.test(v) ? undefined : 'a mail host, optionally after its priority ("10 mx1.example.com")';
    case 'SOA':
      return /^\d{1,10}$/.test(v) && Number(v) <= 4_294_967_295 ? undefined : 'an SOA serial number like 2026120201';
    case 'SRV':
      return /^\d{1,5}\s+\d{1,5}\s+\d{1,5}\s+\S+$/.test(v) ? undefined : 'priority, weight, port and target ("10 5 5060 sip.example.com")';
    case 'CAA':
      return /^\d{1,3}\s+[A-Za-z0-9]+\s+\S.*$/.test(v) ? undefined : 'flags, tag and value ("0 issue letsencrypt.org")';
    default:
      return undefined;
  }
}

function canonicalIpv6(v: string): string {
  try {
    return new URL(`http://[${v}]/`).hostname.slice(1, -1);
  } catch {
    return v.toLowerCase();
  }
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A domain name as compared and shown: lower case, no trailing dot. */
function bare(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

function show(values: readonly string[]): string {
  return values.length === 0 ? '(no records)' : values.join(', ');
}

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

/** Parses `1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353`; undefined when it is none of these. */
export function parseAddress(text: string): ServerAddress | undefined {
  if (isIP(text) !== 0) return { host: text, port: 53 };
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([\d.]+):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const host = m[1] ?? '';
  const port = m[2] === undefined ? 53 : Number(m[2]);
  const family = isIP(host);
  if (family === 0 || (text.startsWith('[') && family !== 6) || port < 1 || port > 65_535) return undefined;
  return { host, port };
}

function serverString(a: ServerAddress): string {
  return endpoint(a.host, a.port);
}
