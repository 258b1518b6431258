import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { messageOf } from '../lib/errors.js';
import { connectReason, DNS_ERRORS } from './sockets.js';
import { mysqlDriver } from './sql/mysql.js';
import { postgresDriver } from './sql/postgres.js';
import type { SqlDriver, SqlFailure, SqlRows, SqlTarget } from './sql/shared.js';
import { caProblem, trustedCas } from './tls-common.js';
import { checkEntry, defineProber, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsProblem, shownUrl, urlAsWritten } from './url-credentials.js';

/** A query file larger than this is not a probe's query (a dump put there by mistake). */
const MAX_QUERY_BYTES = 1_048_576;
/** How much of a value a failure quotes. */
const QUOTED_CHARS = 100;

const DRIVERS: Record<'postgres' | 'mysql', { driver: SqlDriver; schemes: readonly string[]; port: number }> = {
  postgres: { driver: postgresDriver, schemes: ['postgres:', 'postgresql:'], port: 5432 },
  mysql: { driver: mysqlDriver, schemes: ['mysql:', 'mariadb:'], port: 3306 },
};

const schema = Type.Object(
  {
    driver: Type.Union([Type.Literal('postgres'), Type.Literal('mysql')], { expected: 'one of postgres, mysql' }),
    /** `postgres://user:${PASSWORD}@host:5432/db` or `mysql://…`; the password is never shown. */
    url: Type.String({
      pattern: '^(postgres|postgresql|mysql|mariadb)://[^\\s]+$',
      expected: 'a postgres://, postgresql://, mysql:// or mariadb:// URL',
    }),
    /** The SQL, inline. */
    query: Type.Optional(Type.String({ minLength: 1, expected: 'SQL text' })),
    /** A file of SQL, relative to the probes folder, read at each run. */
    queryFile: Type.Optional(Type.String({ minLength: 1, expected: 'a path to a .sql file inside probes/, e.g. sql/lag.sql' })),
    /** Judged on the last result set: its first row's first value (`lt`, `gt`, `eq`) and its row count (`rows`). */
    expect: Type.Optional(
      Type.Object(
        {
          lt: Type.Optional(Type.Number({ expected: 'a number' })),
          gt: Type.Optional(Type.Number({ expected: 'a number' })),
          eq: Type.Optional(Type.Union([Type.Number(), Type.String()], { expected: 'a number or a string' })),
          rows: Type.Optional(Type.Integer({ minimum: 0, expected: 'a row count (0 or more)' })),
        },
        { additionalProperties: false, minProperties: 1, expected: 'an object with lt, gt, eq and/or rows' },
      ),
    ),
    /** Passes only when the server refuses the login: credentials that must not reach this database. */
    expectError: Type.Boolean({ default: false, expected: 'true or false' }),
    /** The query runs in a read-only transaction; always rolled back either way. */
    readOnly: Type.Boolean({ default: true, expected: 'true or false' }),
    /** What the launch checklist counts this probe as, besides what the kind infers (expectError: credentials separation). */
    evidence: Type.Optional(Type.Literal('replication', { expected: 'replication' })),
    /** Connect over TLS. */
    tls: Type.Boolean({ default: false, expected: 'true or false' }),
    /** With tls: extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/db-ca.pem}`. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** With tls: skip certificate verification. */
    insecure: Type.Boolean({ default: false, expected: 'true or false' }),
  },
  { additionalProperties: false },
);

/** The `sql` kind's own fields of a probe definition. */
export type SqlSpec = Static<typeof schema>;

export const sql = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.url),
    latency: true,
    evidence(spec, w) {
      if (spec.expectError) return checkEntry('credentialsSeparation', spec.id, urlAsWritten(spec.url), w);
      if (spec.evidence === 'replication') return checkEntry('replication', spec.id, urlAsWritten(spec.url), w);
      return undefined;
    },
  },
  values: (spec) => (spec.expectError ? ['latency_ms'] : ['latency_ms', 'value', 'rows']),
  check(spec) {
    const problems: SpecProblem[] = [];
    problems.push(...urlProblems(spec));
    if (spec.expectError) {
      for (const field of ['query', 'queryFile', 'expect', 'evidence'] as const) {
        if (spec[field] !== undefined)
          problems.push({ path: field, message: 'expectError only tries to log in: it takes no query, expect or evidence' });
      }
    } else if ((spec.query === undefined) === (spec.queryFile === undefined)) {
      problems.push({ path: 'query', message: 'expected one of query or queryFile (or expectError: true)' });
    }
    if (spec.queryFile !== undefined && fileEscapes(spec.queryFile)) {
      problems.push({
        path: 'queryFile',
        message: `expected a path inside probes/ (no absolute path, no ".."), got ${JSON.stringify(spec.queryFile)}`,
      });
    }
    if (!spec.tls) {
      if (spec.ca !== undefined) problems.push({ path: 'ca', message: 'expected tls: true with ca (the connection is plain)' });
      if (spec.insecure) problems.push({ path: 'insecure', message: 'expected tls: true with insecure (the connection is plain)' });
    }
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    return problems;
  },
  probe: (spec, ctx) => run(spec, ctx),
});

function urlProblems(spec: SqlSpec): SpecProblem[] {
  let u: URL;
  try {
    u = new URL(spec.url);
  } catch {
    return [{ path: 'url', message: 'expected a URL like postgres://user:password@host:5432/database' }];
  }
  const problems: SpecProblem[] = [];
  const { schemes } = DRIVERS[spec.driver];
  if (!schemes.includes(u.protocol)) {
    problems.push({ path: 'url', message: `expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL with driver ${spec.driver}` });
  }
  if (u.hostname === '') problems.push({ path: 'url', message: 'expected a host in the URL' });
  // Options in the query string would be read by one driver and ignored by the other; the fields say it once.
  if (u.search !== '') {
    problems.push({ path: 'url', message: 'expected no ?options in the URL: TLS is set with tls, ca and insecure' });
  }
  const credentials = credentialsProblem(spec.url);
  if (credentials !== undefined) problems.push({ path: 'url', message: credentials });
  return problems;
}

function fileEscapes(file: string): boolean {
  const normal = path.normalize(file);
  return path.isAbsolute(file) || normal === '..' || normal.startsWith(`..${path.sep}`);
}

/** The URL taken apart for a driver: user and password percent-decoded, the default port filled in. */
function targetOf(spec: SqlSpec): SqlTarget {
  const u = new URL(spec.url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port: u.port === '' ? DRIVERS[spec.driver].port : Number(u.port),
    user: decoded(u.username),
    password: decoded(u.password),
    database: decoded(u.pathname.replace(/^\//, '')),
    tls: spec.tls
      ? { ca: trustedCas(spec.ca), insecure: spec.insecure, servername: /^[\d.]+$|:/.test(host) ? undefined : host }
      : undefined,
  };
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

async function run(spec: SqlSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const start = ctx.clock.now();
  const where = shownUrl(spec.url);
  const elapsed = () => formatDuration(ctx.clock.now() - start);
  if (ctx.signal.aborted) return { ok: false, code: 'TIMEOUT', message: `the deadline passed before connecting to ${where}`, values: {} };
  let text: string | undefined = spec.query;
  if (spec.queryFile !== undefined) {
    const read = await queryFromFile(spec.queryFile, ctx);
    if (typeof read !== 'string') return read;
    text = read;
  }
  const { driver } = DRIVERS[spec.driver];
  const target = targetOf(spec);
  let session: Awaited<ReturnType<SqlDriver['connect']>>;
  try {
    session = await driver.connect(target, { connectMs: ctx.deadline - ctx.clock.now(), readOnly: spec.readOnly, signal: ctx.signal });
  } catch (err) {
    const failure = driver.classify(err);
    if (spec.expectError && failure.kind === 'auth') {
      return { ok: true, values: { latency_ms: ctx.clock.now() - start }, details: { refused: failure.code } };
    }
    const result = loginFailure(failure, where, target.user, ctx.signal.aborted, elapsed());
    // A login that never got to be refused says nothing about the credentials.
    if (spec.expectError) result.message += ': nothing was checked (expectError passes only when the server refuses the login)';
    return result;
  }
  try {
    if (spec.expectError) {
      return {
        ok: false,
        code: 'LOGGED_IN',
        message: `logged in to ${where} as ${target.user || 'the default user'}: these credentials reach this database (expected them refused)`,
        values: {},
      };
    }
    const remaining = ctx.deadline - ctx.clock.now();
    // The server stops the query a little before the run's deadline, so its own error (and not a
    // cut connection) says why, and the backend is not left running it.
    const statementMs = Math.max(1, remaining - Math.min(500, Math.max(50, remaining / 10)));
    let got: SqlRows;
    try {
      got = await session.run(text ?? '', { readOnly: spec.readOnly, statementMs });
    } catch (err) {
      return queryFailure(driver.classify(err), where, ctx.signal.aborted, elapsed(), statementMs);
    }
    const values: Record<string, number> = { latency_ms: ctx.clock.now() - start, rows: got.rows };
    const number = numeric(got.first);
    if (number !== undefined) values.value = number;
    const failed = spec.expect === undefined ? undefined : judge(spec.expect, got, number);
    if (failed !== undefined) return { ok: false, code: 'ASSERTION', message: `${where}: ${redacted(failed, ctx)}`, values };
    return { ok: true, values };
  } finally {
    session.close();
  }
}

async function queryFromFile(file: string, ctx: ProbeContext): Promise<string | ProbeResult> {
  if (fileEscapes(file)) {
    return { ok: false, code: 'CONFIG', message: `queryFile ${JSON.stringify(file)} is outside probes/`, values: {} };
  }
  const full = path.resolve(ctx.probesDir, file);
  let bytes: Buffer;
  try {
    bytes = await readFile(full, { signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) return { ok: false, code: 'TIMEOUT', message: `the deadline passed reading ${full}`, values: {} };
    return {
      ok: false,
      code: 'CONFIG',
      message: `cannot read queryFile ${full} (queryFile is relative to ${ctx.probesDir}): ${messageOf(err)}`,
      values: {},
    };
  }
  if (bytes.length > MAX_QUERY_BYTES) {
    return { ok: false, code: 'CONFIG', message: `queryFile ${full} is larger than 1 MiB: not a probe's query`, values: {} };
  }
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { ok: false, code: 'CONFIG', message: `queryFile ${full} is empty`, values: {} };
  return text;
}

function loginFailure(f: SqlFailure, where: string, user: string, aborted: boolean, after: string): ProbeResult {
  const code = f.code === '' ? '' : ` (${f.code})`;
  if (aborted || (f.kind === 'connect' && /timeout|ETIMEDOUT/i.test(`${f.code} ${f.detail}`))) {
    return { ok: false, code: 'TIMEOUT', message: `timed out after ${after} connecting to ${where}`, values: {} };
  }
  switch (f.kind) {
    case 'auth':
      return {
        ok: false,
        code: 'AUTH',
        message: `${where} refused the login of ${user || 'the default user'}: ${f.detail}${code}`,
        values: {},
      };
    case 'tls':
      return {
        ok: false,
        code: 'TLS',
        message: `TLS with ${where} failed: ${f.detail}${code} (add its CA with ca:, or set insecure: true)`,
        values: {},
      };
    case 'connect': {
      if (DNS_ERRORS.has(f.code)) return { ok: false, code: 'DNS', message: `DNS lookup for ${where} failed${code}`, values: {} };
      const reason = connectReason(f.code) ?? f.detail;
      return { ok: false, code: 'CONNECT', message: `cannot connect to ${where}: ${reason}${code}`, values: {} };
    }
    default:
      // The server answered but would not open a session (no such database, too many connections).
      return { ok: false, code: 'CONNECT', message: `${where} did not open a session: ${f.detail}${code}`, values: {} };
  }
}

function queryFailure(f: SqlFailure, where: string, aborted: boolean, after: string, statementMs: number): ProbeResult {
  const code = f.code === '' ? '' : ` (${f.code})`;
  if (aborted) {
    return { ok: false, code: 'TIMEOUT', message: `timed out after ${after} waiting for the query on ${where}`, values: {} };
  }
  switch (f.kind) {
    case 'timeout':
      return {
        ok: false,
        code: 'TIMEOUT',
        message: `the query on ${where} ran past the run's deadline: the server cancelled it after ${formatDuration(statementMs)}${code}`,
        values: {},
      };
    case 'read-only':
      return {
        ok: false,
        code: 'READ_ONLY',
        message: `the query tried to write in a read-only transaction on ${where}: ${f.detail}${code} (readOnly: false allows a write, still rolled back)`,
        values: {},
      };
    case 'query':
    case 'auth':
      return { ok: false, code: 'QUERY', message: `the query failed on ${where}: ${f.detail}${code}`, values: {} };
    default:
      return { ok: false, code: 'CONNECT', message: `lost the connection to ${where} during the query: ${f.detail}${code}`, values: {} };
  }
}

type Expect = NonNullable<SqlSpec['expect']>;

/**
 * Why the result misses the expectation, or undefined when it meets it. `lt`/`gt` need a number
 * (a numeric string counts, as PostgreSQL sends numeric and bigint); `eq` with a number compares
 * numbers, with a string compares the value's text exactly.
 */
function judge(expect: Expect, got: SqlRows, number: number | undefined): string | undefined {
  if (expect.rows !== undefined && got.rows !== expect.rows) {
    return `the query returned ${got.rows} row${got.rows === 1 ? '' : 's'}, expected ${expect.rows}`;
  }
  const needsValue = expect.lt !== undefined || expect.gt !== undefined || expect.eq !== undefined;
  if (!needsValue) return undefined;
  const shown = show(got.first);
  if (got.first === undefined) return 'the query returned no row: nothing to compare';
  if (typeof expect.eq === 'string') {
    if (textOf(got.first) !== expect.eq) return `the first value is ${shown}, expected ${JSON.stringify(expect.eq)}`;
  } else if (expect.eq !== undefined) {
    if (number !== expect.eq) return `the first value is ${shown}, expected ${expect.eq}`;
  }
  if (expect.lt === undefined && expect.gt === undefined) return undefined;
  if (number === undefined) return `the first value is ${shown}, not a number (expected ${bounds(expect)})`;
  if ((expect.lt !== undefined && !(number < expect.lt)) || (expect.gt !== undefined && !(number > expect.gt))) {
    return `the first value is ${number}, expected ${bounds(expect)}`;
  }
  return undefined;
}

function bounds(expect: Expect): string {
  const parts: string[] = [];
  if (expect.gt !== undefined) parts.push(`above ${expect.gt}`);
  if (expect.lt !== undefined) parts.push(`below ${expect.lt}`);
  return parts.join(' and ');
}

/** The value as a number: numbers, bigints and numeric text (PostgreSQL's numeric and bigint arrive as text). */
function numeric(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** The value as `eq: "text"` compares it: dates in ISO form, bytes as UTF-8, NULL as nothing. */
function textOf(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function show(v: unknown): string {
  const text = textOf(v);
  if (text === undefined) return 'NULL';
  const cut = text.length > QUOTED_CHARS ? `${text.slice(0, QUOTED_CHARS)}…` : text;
  return numeric(v) !== undefined ? cut : JSON.stringify(cut);
}

function redacted(text: string, ctx: ProbeContext): string {
  return ctx.redactor?.text(text) ?? text;
}
