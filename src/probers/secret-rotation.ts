import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import { fieldOf, isJsonObject } from '../lib/fields.js';
import { Duration } from '../lib/schema.js';
import { createTransport, describeReply, isSuccess, parseJson, type Transport } from './log-ingestion/backend.js';
import { valuesAt } from './log-ingestion/generic.js';
import { checkEntry, defineProber, type ProbeBase, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsHeader, credentialsProblem, shownUrl, urlAsWritten, withoutCredentials } from './url-credentials.js';

const Url = Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' });
const Headers = Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
  default: {},
  expected: 'a map of header names to values',
});
/** Dotted, as log-ingestion's `search.match` reads it; it must lead to one number or string. */
const JsonPath = Type.String({ minLength: 1, expected: 'a dotted JSON path such as data.current_version' });

const schema = Type.Object(
  {
    /** Where the secret's current version is read (Vault KV v2: `/v1/<mount>/metadata/<path>`, `data.current_version`). */
    source: Type.Object({ url: Url, headers: Headers, path: JsonPath }, { additionalProperties: false }),
    /** Each service's own report of the version it uses. */
    services: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', expected: 'a short name like billing or api-eu' }),
          url: Url,
          headers: Headers,
          path: JsonPath,
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100, expected: 'a list of services, each {name, url, path}' },
    ),
    /** How long after the source changes a service may still report the older version. */
    maxSkew: Duration('5m'),
  },
  { additionalProperties: false },
);

/** The `secret-rotation` kind's own definition fields. */
export type SecretRotationSpec = Static<typeof schema>;
type Spec = ProbeBase & SecretRotationSpec;
/** A URL answering JSON with a version at `path`: the source or a service. */
type VersionEndpoint = SecretRotationSpec['source'];

/** A version as first seen, kept across runs: the value (as text) and when it was first reported. */
interface Seen {
  version: string;
  /** Epoch ms of the first run that read this version. */
  since: number;
}

/** What a `secret-rotation` probe keeps across runs: the source's version and each service's. */
interface RotationState {
  source: Seen;
  /** By service name; a service that could not be read keeps what it last reported. */
  services: Array<Seen & { name: string }>;
}

/** One read: the version, or why there is none (phrased to follow "the source …" or a service's name). */
type Read = { version: string } | { error: string };

/** How a service stands against the source's version. */
interface ServiceReport {
  name: string;
  url: string;
  version?: string;
  /** current, behind (older or, for non-integers, different), ahead (a higher integer), or down. */
  status: 'current' | 'behind' | 'ahead' | 'down';
  /** Seconds it has been behind the source (from the change, or from when it went back if later). */
  lag_s?: number;
  error?: string;
}

/** How many of an answer's top-level keys a "path not found" message lists. */
const EXCERPT_KEYS = 10;

export const secretRotation = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.source.url),
    evidence: (spec, w) => checkEntry('secretRotation', spec.id, urlAsWritten(spec.source.url), w),
  },
  values: () => ['skew_s', 'services_current', 'services_total'],
  check(spec) {
    const problems: SpecProblem[] = [];
    const urls: Array<[string, string]> = [
      ['source.url', spec.source.url],
      ...spec.services.map((s, i): [string, string] => [`services[${i}].url`, s.url]),
    ];
    for (const [path, url] of urls) {
      const problem = credentialsProblem(url);
      if (problem) problems.push({ path, message: problem });
    }
    const seen = new Set<string>();
    spec.services.forEach((s, i) => {
      if (seen.has(s.name))
        problems.push({ path: `services[${i}].name`, message: `expected each service name once; ${s.name} is listed twice` });
      seen.add(s.name);
    });
    return problems;
  },
  async probe(spec, ctx) {
    const transport = createTransport({}, ctx.clock);
    try {
      // All at once: one slow service must not eat the others' share of the run's timeout.
      const [source, services] = await Promise.all([
        readVersion(spec.source, transport, ctx.signal),
        Promise.all(spec.services.map((s) => readVersion(s, transport, ctx.signal))),
      ]);
      const prev = readState(ctx);
      const { result, state } = judge(spec, source, services, prev, ctx.clock.now());
      if (state !== prev) ctx.state.set(state);
      return result;
    } finally {
      await transport.close();
    }
  },
});

/** GETs one endpoint and reads the version at its path. Never throws. */
async function readVersion(endpoint: VersionEndpoint, transport: Transport, signal: AbortSignal): Promise<Read> {
  const url = withoutCredentials(endpoint.url);
  const headers = { accept: 'application/json', ...credentialsHeader(endpoint.url), ...endpoint.headers };
  const reply = await transport.send({ method: 'GET', url, headers }, signal);
  const at = shownUrl(url);
  if ('error' in reply) return { error: `${at} could not be read: ${reply.error}` };
  // The body is not quoted: a version endpoint may hold more than a version (Vault's custom_metadata).
  if (!isSuccess(reply.status)) return { error: `${at} answered ${describeReply(reply, '')}` };
  const doc = parseJson(reply.text);
  if (doc === undefined) return { error: `${at} answered ${describeReply(reply, '')} with a body that is not JSON` };
  const found = valuesAt(doc, endpoint.path);
  if (found.length === 0) return { error: `${at} answered without ${endpoint.path} (${shape(doc)})` };
  if (found.length > 1) return { error: `${at} has ${found.length} values at ${endpoint.path}; expected one version` };
  const [value] = found;
  if (typeof value === 'number' && Number.isFinite(value)) return { version: String(value) };
  if (typeof value === 'string' && value.trim() !== '') return { version: value.trim() };
  return { error: `${at} has ${describeValue(value)} at ${endpoint.path}; expected a version number or string` };
}

/** The top-level keys of an answer, for a path that found nothing: enough to fix the path, nothing of the values. */
function shape(doc: unknown): string {
  if (!isJsonObject(doc)) return `the answer is ${describeValue(doc)}`;
  const keys = Object.keys(doc);
  if (keys.length === 0) return 'the answer is an empty object';
  const shown = keys.slice(0, EXCERPT_KEYS).join(', ');
  return `its top-level keys: ${shown}${keys.length > EXCERPT_KEYS ? ', …' : ''}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'an empty string';
  return `a ${typeof value}`;
}

/**
 * -1 when `a` is older than `b`, 0 when equal, 1 when newer. Integers compare as numbers; anything
 * else only as equal or not, and a difference counts as older: a string (a hash, a label) has no order
 * vigil can trust, and taking an unknown version for the newer one would hide a laggard.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const integer = /^-?\d+$/;
  if (integer.test(a) && integer.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a === b ? 0 : -1;
}

/** Judges one run against the state of the last: pure, so tests drive it with any clock. */
function judge(
  spec: Spec,
  source: Read,
  reads: Read[],
  prev: RotationState | undefined,
  now: number,
): { result: ProbeResult; state: RotationState | undefined } {
  const total = spec.services.length;
  if ('error' in source) {
    // Nothing is judged without the source: a service's version means nothing on its own, and the
    // state stays as it was so the lag keeps counting from the real change.
    return {
      result: { ok: false, code: 'SOURCE_FAILED', message: `the source ${source.error}`, values: { services_total: total } },
      state: prev,
    };
  }
  const sourceSeen: Seen =
    prev !== undefined && prev.source.version === source.version ? prev.source : { version: source.version, since: now };
  const before = new Map((prev?.services ?? []).map((s) => [s.name, s]));
  const kept: RotationState['services'] = [];
  const lags = new Map<string, number>();
  const reports: ServiceReport[] = spec.services.map((service, i) => {
    const read = reads[i] ?? { error: 'was not read' };
    const last = before.get(service.name);
    const base = { name: service.name, url: shownUrl(service.url) };
    if ('error' in read) {
      // A service that cannot be read is never taken for current; what it last reported is kept.
      if (last) kept.push(last);
      return { ...base, status: 'down', error: read.error };
    }
    const seen = last !== undefined && last.version === read.version ? last : { name: service.name, version: read.version, since: now };
    kept.push(seen);
    const order = compareVersions(read.version, source.version);
    if (order === 0) return { ...base, version: read.version, status: 'current' };
    if (order > 0) return { ...base, version: read.version, status: 'ahead' };
    // Behind since the change, or since it went back to an older version if that came later.
    const lag = now - Math.max(sourceSeen.since, seen.since);
    lags.set(service.name, lag);
    return { ...base, version: read.version, status: 'behind', lag_s: Math.round(lag / 1000) };
  });
  const state: RotationState = { source: sourceSeen, services: kept };
  const next = prev !== undefined && JSON.stringify(prev) === JSON.stringify(state) ? prev : state;

  const values = {
    skew_s: Math.round(Math.max(0, ...lags.values()) / 1000),
    services_current: reports.filter((r) => r.status === 'current').length,
    services_total: total,
  };
  const details = { source_version: source.version, source_since: new Date(sourceSeen.since).toISOString(), services: reports };
  const maxSkew = ms(spec.maxSkew);
  const problems: string[] = [];
  for (const r of reports) {
    const lag = lags.get(r.name);
    if (lag !== undefined && lag > maxSkew) {
      problems.push(
        `${r.name} still on version ${r.version} of ${source.version}, ${formatDuration(lag)} after the change (max ${spec.maxSkew})`,
      );
    }
  }
  const lagging = problems.length > 0;
  for (const r of reports) if (r.status === 'down') problems.push(`${r.name}: ${r.error}`);
  if (problems.length === 0) return { result: { ok: true, values, details }, state: next };
  const code = lagging ? 'ROTATION_LAGGING' : 'SERVICE_FAILED';
  return { result: { ok: false, code, message: problems.join('; '), values, details }, state: next };
}

/** The state of the last run, or undefined when there is none or it is not one this version wrote. */
function readState(ctx: ProbeContext): RotationState | undefined {
  const s = ctx.state.get<RotationState>();
  const isSeen = (v: unknown): v is Seen =>
    isJsonObject(v) && typeof v.version === 'string' && typeof v.since === 'number' && Number.isFinite(v.since);
  // State written by another version (or by hand) is dropped rather than trusted.
  if (!isJsonObject(s) || !isSeen(s.source) || !Array.isArray(s.services)) return undefined;
  if (!s.services.every((x: unknown) => isSeen(x) && typeof fieldOf(x, 'name') === 'string')) return undefined;
  return s;
}
