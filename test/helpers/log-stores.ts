/**
 * Log stores on loopback for the log-ingestion tests: real HTTP servers speaking the Loki push and
 * query_range API and the Elasticsearch/OpenSearch document API with the response shapes of
 * ../shared/fixtures, that make a written event searchable only after `delayMs` (Loki's ingester
 * flush, Elasticsearch's refresh), and that can be told to reject writes or to fail searches.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the store received it. */
export interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** An answer a switch forces instead of the normal one. */
export interface Forced {
  status: number;
  body: string;
  contentType?: string;
  /** Only the next this many requests; all of them when unset. */
  times?: number;
}

/** What every fake store lets a test see and control. */
export interface FakeStore {
  url: string;
  /** Every request, in arrival order. */
  requests: Received[];
  /** How long after a write the event becomes searchable; Infinity never. */
  delayMs: number;
  /** When set, writes are answered with this instead. */
  rejectWrites?: Forced;
  /** When true, searches and counts get no answer at all (a store that hangs). */
  hang?: boolean;
  close(): Promise<void>;
}

export interface FakeLoki extends FakeStore {
  /** When set, query_range is answered with this instead. */
  failSearch?: Forced;
  /** The query_range requests only. */
  searches(): Received[];
  /** The entries a tenant has, searchable or not. */
  entries(tenant?: string): Array<{ labels: Record<string, string>; ts: bigint; line: string }>;
  /** Stores a line at any time (the past, for retention) as an application's shipper would, searchable at once. */
  add(labels: Record<string, string>, atMs: number, line: string, tenant?: string): void;
  /** The instant (`/loki/api/v1/query`) requests only. */
  counts(): Received[];
}

export interface FakeElasticsearch extends FakeStore {
  /** When set, _search answers with this, or with HTTP 200 and this many failed shards. */
  failSearch?: Forced | { shardsFailed: number; times?: number };
  searches(): Received[];
  docs(index: string): Array<Record<string, unknown>>;
  /** Indexes a document as a shipper would, searchable at once. */
  add(index: string, source: Record<string, unknown>): void;
  /** The `_count` requests only. */
  counts(): Received[];
}

export interface FakeEventApi extends FakeStore {
  failSearch?: Forced;
  searches(): Received[];
  /** Stores an event as the application would, searchable at once. */
  add(event: Record<string, unknown>): void;
}

type Handler = (req: Received, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; requests: Received[]; close(): Promise<void> }> {
  const requests: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const received: Received = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      requests.push(received);
      handler(received, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Applies a Forced answer if one is due; consumes one of its `times`. */
function forced(res: ServerResponse, f: Forced | undefined): boolean {
  if (f === undefined || f.times === 0) return false;
  if (f.times !== undefined) f.times -= 1;
  send(res, f.status, f.body, f.contentType ?? (f.body.trimStart().startsWith('{') ? 'application/json' : 'text/plain; charset=utf-8'));
  return true;
}

// ---------------------------------------------------------------------------------------------- Loki

interface LokiEntry {
  labels: Record<string, string>;
  ts: bigint;
  line: string;
  visibleAt: number;
}

/**
 * Loki 3: `POST /loki/api/v1/push` (JSON) → 204, `GET /loki/api/v1/query_range` → streams.
 * With `authEnabled`, every request needs `X-Scope-OrgID` (401 `no org id`) and tenants are separate;
 * without it everything lands in tenant `fake`, as in Loki. Returned streams carry the labels Loki 3
 * adds (`service_name`, `detected_level`).
 */
export async function startLoki(opts: { authEnabled?: boolean; delayMs?: number } = {}): Promise<FakeLoki> {
  const tenants = new Map<string, LokiEntry[]>();
  const store: Partial<FakeLoki> = { delayMs: opts.delayMs ?? 0 };
  const http = await serve((req, res) => {
    const org = req.headers['x-scope-orgid'];
    const tenant = opts.authEnabled ? (typeof org === 'string' && org !== '' ? org : undefined) : 'fake';
    if (tenant === undefined) return send(res, 401, 'no org id\n', 'text/plain; charset=utf-8');
    if (req.method === 'POST' && req.path === '/loki/api/v1/push') {
      if (forced(res, store.rejectWrites)) return;
      const problem = lokiPush(req, tenants, tenant, store.delayMs ?? 0);
      if (problem) return send(res, 400, `${problem}\n`, 'text/plain; charset=utf-8');
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.path === '/loki/api/v1/query') {
      if (store.hang) return;
      if (forced(res, store.failSearch)) return;
      const answer = lokiCount(req.query, tenants.get(tenant) ?? []);
      if (typeof answer === 'string') return send(res, 400, `${answer}\n`, 'text/plain; charset=utf-8');
      return send(res, 200, answer);
    }
    if (req.method === 'GET' && req.path === '/loki/api/v1/query_range') {
      if (store.hang) return;
      if (forced(res, store.failSearch)) return;
      const answer = lokiQuery(req.query, tenants.get(tenant) ?? []);
      if (typeof answer === 'string') return send(res, 400, `${answer}\n`, 'text/plain; charset=utf-8');
      return send(res, 200, answer);
    }
    send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
  });
  return Object.assign(store, {
    ...http,
    searches: () => http.requests.filter((r) => r.path === '/loki/api/v1/query_range'),
    entries: (tenant = 'fake') => (tenants.get(tenant) ?? []).map(({ labels, ts, line }) => ({ labels, ts, line })),
    counts: () => http.requests.filter((r) => r.path === '/loki/api/v1/query'),
    add(labels: Record<string, string>, atMs: number, line: string, tenant = 'fake') {
      const entries = tenants.get(tenant) ?? [];
      entries.push({ labels, ts: BigInt(Math.round(atMs)) * 1_000_000n, line, visibleAt: 0 });
      tenants.set(tenant, entries);
    },
  }) as FakeLoki;
}

/**
 * An instant query of the one metric shape log-query sends, `sum(count_over_time(LOG_QUERY [Ns]))`,
 * counting the entries in (time - N s, time]; the vector is empty when nothing matched, as in Loki.
 */
function lokiCount(q: URLSearchParams, entries: LokiEntry[]) {
  const m = /^sum\(count_over_time\((.*) \[(\d+)s\]\)\)$/s.exec(q.get('query') ?? '');
  if (!m) return 'parse error : this fake answers only sum(count_over_time(<log query> [<n>s]))';
  const parsed = parseLogQL(m[1] as string);
  if (typeof parsed === 'string') return parsed;
  const time = lokiTime(q.get('time')) ?? BigInt(Date.now()) * 1_000_000n;
  const start = time - BigInt(m[2] as string) * 1_000_000_000n;
  const n = entries
    .filter((e) => e.visibleAt <= Date.now() && e.ts > start && e.ts <= time)
    .filter((e) => parsed.matchers.every((f) => f(e.labels)) && parsed.filters.every((f) => f(e.line))).length;
  const seconds = Number(time / 1_000_000n) / 1000;
  return { status: 'success', data: { resultType: 'vector', result: n === 0 ? [] : [{ metric: {}, value: [seconds, String(n)] }] } };
}

function lokiPush(req: Received, tenants: Map<string, LokiEntry[]>, tenant: string, delayMs: number): string | undefined {
  if (!String(req.headers['content-type'] ?? '').includes('application/json')) {
    return 'error at least one label pair is required per stream'; // what Loki says when it reads JSON as protobuf
  }
  let doc: { streams?: Array<{ stream?: Record<string, string>; values?: unknown[] }> };
  try {
    doc = JSON.parse(req.body);
  } catch (err) {
    return `loghttp.PushRequest.Streams: ReadArray: expect [ or , or ] or n, but found ${(err as Error).message}`;
  }
  const entries = tenants.get(tenant) ?? [];
  for (const s of doc.streams ?? []) {
    const labels = s.stream ?? {};
    if (Object.keys(labels).length === 0) return 'error at least one label pair is required per stream';
    for (const v of s.values ?? []) {
      if (!Array.isArray(v) || typeof v[0] !== 'string' || !/^\d+$/.test(v[0]) || typeof v[1] !== 'string') {
        return 'loghttp.PushRequest.Streams: decode values: expected ["<unix epoch in nanoseconds>", "<log line>"]';
      }
      entries.push({ labels, ts: BigInt(v[0]), line: v[1], visibleAt: Date.now() + delayMs });
    }
  }
  tenants.set(tenant, entries);
  return undefined;
}

function lokiQuery(q: URLSearchParams, entries: LokiEntry[]) {
  const query = q.get('query');
  if (!query) return 'parse error : syntax error: unexpected $end';
  const parsed = parseLogQL(query);
  if (typeof parsed === 'string') return parsed;
  const now = BigInt(Date.now()) * 1_000_000n;
  const start = lokiTime(q.get('start')) ?? now - 3_600_000_000_000n;
  const end = lokiTime(q.get('end')) ?? now;
  const limit = Number(q.get('limit') ?? 100);
  const backward = (q.get('direction') ?? 'backward') === 'backward';
  const hits = entries
    .filter((e) => e.visibleAt <= Date.now() && e.ts >= start && e.ts < end)
    .filter((e) => parsed.matchers.every((m) => m(e.labels)) && parsed.filters.every((f) => f(e.line)))
    .sort((a, b) => (a.ts === b.ts ? 0 : a.ts < b.ts === backward ? 1 : -1))
    .slice(0, limit);
  type Stream = { stream: Record<string, string>; values: Array<[string, string]> };
  const streams = new Map<string, Stream>();
  for (const e of hits) {
    const stream = { ...e.labels, service_name: e.labels.service_name ?? e.labels.job ?? 'unknown_service', detected_level: level(e.line) };
    const key = JSON.stringify(Object.entries(stream).sort());
    const s: Stream = streams.get(key) ?? { stream, values: [] };
    s.values.push([e.ts.toString(), e.line]);
    streams.set(key, s);
  }
  return {
    status: 'success',
    data: {
      resultType: 'streams',
      result: [...streams.values()],
      stats: { summary: { totalEntriesReturned: hits.length, totalLinesProcessed: entries.length, execTime: 0.001 } },
    },
  };
}

/** Loki's timestamp parameter: RFC 3339, float seconds, ≤ 10 digits as seconds, else nanoseconds. */
function lokiTime(v: string | null): bigint | undefined {
  if (v === null || v === '') return undefined;
  if (/^\d+$/.test(v)) return v.length <= 10 ? BigInt(v) * 1_000_000_000n : BigInt(v);
  if (/^\d+\.\d+$/.test(v)) return BigInt(Math.round(Number(v) * 1e9));
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : BigInt(ms) * 1_000_000n;
}

function level(line: string): string {
  return /\blevel=(\w+)/.exec(line)?.[1] ?? 'unknown';
}

/** A LogQL log query: a stream selector and line filters. Enough of the grammar to reject what Loki rejects. */
function parseLogQL(
  text: string,
): { matchers: Array<(l: Record<string, string>) => boolean>; filters: Array<(line: string) => boolean> } | string {
  let i = 0;
  const err = (what: string) => `parse error at line 1, col ${i + 1}: syntax error: unexpected ${what}`;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string | undefined => {
    ws();
    const q = text[i];
    if (q === '`') {
      const close = text.indexOf('`', i + 1);
      if (close < 0) return undefined;
      const s = text.slice(i + 1, close);
      i = close + 1;
      return s;
    }
    if (q !== '"') return undefined;
    let j = i + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    try {
      const s = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      return s;
    } catch {
      return undefined;
    }
  };
  const op = (ops: string[]) => {
    ws();
    const found = ops.find((o) => text.startsWith(o, i));
    if (found) i += found.length;
    return found;
  };
  ws();
  if (text[i] !== '{') return err(text[i] === undefined ? '$end' : 'IDENTIFIER');
  i++;
  const matchers: Array<(l: Record<string, string>) => boolean> = [];
  let nonEmpty = false;
  for (;;) {
    ws();
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i))?.[0];
    if (!name) return err(text[i] === '}' ? '}' : 'IDENTIFIER');
    i += name.length;
    const o = op(['=~', '!~', '!=', '=']);
    if (!o) return err('IDENTIFIER');
    const value = str();
    if (value === undefined) return err('IDENTIFIER');
    const re = o.includes('~') ? new RegExp(`^(?:${value})$`) : undefined;
    if (o === '=' && value !== '') nonEmpty = true;
    matchers.push((l) => {
      const got = l[name] ?? '';
      return o === '=' ? got === value : o === '!=' ? got !== value : o === '=~' ? re!.test(got) : !re!.test(got);
    });
    ws();
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '}') {
      i++;
      break;
    }
    return err(text[i] === undefined ? '$end' : 'IDENTIFIER');
  }
  if (!nonEmpty) {
    return 'parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will';
  }
  const filters: Array<(line: string) => boolean> = [];
  for (;;) {
    ws();
    if (i >= text.length) break;
    const o = op(['|=', '!=', '|~', '!~']);
    if (!o) return err('IDENTIFIER');
    const value = str();
    if (value === undefined) return err('$end');
    const re = o.includes('~') ? new RegExp(value) : undefined;
    filters.push((line) =>
      o === '|=' ? line.includes(value) : o === '!=' ? !line.includes(value) : o === '|~' ? re!.test(line) : !re!.test(line),
    );
  }
  return { matchers, filters };
}

// ------------------------------------------------------------------------------ Elasticsearch / OpenSearch

interface EsDoc {
  id: string;
  source: Record<string, unknown>;
  visibleAt: number;
}

/**
 * Elasticsearch 8 or OpenSearch 2: `POST /INDEX/_doc` → 201 (the fixture's shape for the flavor),
 * `POST|GET /INDEX/_search` with `term`, `bool` and `match_all` queries. Indices are created on first
 * write with dynamic mapping: a string becomes `text` (standard-analysed, so a term query on it
 * matches single lowercase tokens only) with a `.keyword` sub-field, unless named in `keywordFields`.
 * `requireAuthorization` makes every request without that exact Authorization header a 401.
 */
export async function startElasticsearch(
  opts: { flavor?: 'elasticsearch' | 'opensearch'; delayMs?: number; keywordFields?: string[]; requireAuthorization?: string } = {},
): Promise<FakeElasticsearch> {
  const flavor = opts.flavor ?? 'elasticsearch';
  const indices = new Map<string, EsDoc[]>();
  const store: Partial<FakeElasticsearch> = { delayMs: opts.delayMs ?? 0 };
  let nextId = 0;
  const http = await serve((req, res) => {
    if (opts.requireAuthorization !== undefined && req.headers.authorization !== opts.requireAuthorization) {
      res.setHeader('www-authenticate', 'Basic realm="security" charset="UTF-8"');
      const reason = `missing authentication credentials for REST request [${req.path}]`;
      return send(res, 401, esError(401, 'security_exception', reason));
    }
    const m = /^\/([^/_][^/]*)\/(_doc|_search|_count)$/.exec(req.path);
    if (!m) return send(res, 400, esError(400, 'illegal_argument_exception', `request [${req.path}] contains unrecognized parameter`));
    const index = decodeURIComponent(m[1] as string);
    if (req.body !== '' && !String(req.headers['content-type'] ?? '').includes('application/json')) {
      return send(res, 406, { error: `Content-Type header [${req.headers['content-type']}] is not supported`, status: 406 });
    }
    if (m[2] === '_doc' && req.method === 'POST') {
      if (forced(res, store.rejectWrites)) return;
      if (index !== index.toLowerCase() || /^[-_+]/.test(index)) {
        return send(res, 400, esError(400, 'invalid_index_name_exception', `Invalid index name [${index}], must be lowercase`));
      }
      let source: Record<string, unknown>;
      try {
        source = JSON.parse(req.body);
      } catch {
        return send(res, 400, esError(400, 'document_parsing_exception', '[1:1] failed to parse'));
      }
      const id = `fake${String(nextId++).padStart(16, '0')}`;
      const docs = indices.get(index) ?? [];
      docs.push({ id, source, visibleAt: Date.now() + (store.delayMs ?? 0) });
      indices.set(index, docs);
      return send(res, 201, indexResponse(flavor, index, id, docs.length - 1));
    }
    if (m[2] === '_count' && (req.method === 'POST' || req.method === 'GET')) {
      if (store.hang) return;
      const docs = matching(indices, index);
      if (docs === undefined) return send(res, 404, esError(404, 'index_not_found_exception', `no such index [${index}]`));
      let body: { query?: unknown };
      try {
        body = req.body === '' ? {} : JSON.parse(req.body);
      } catch {
        return send(res, 400, esError(400, 'parsing_exception', 'Unknown key for a VALUE_STRING in [query].'));
      }
      const match = compileQuery(body.query ?? { match_all: {} }, new Set(opts.keywordFields ?? []));
      if (typeof match === 'string') return send(res, 400, esError(400, 'parsing_exception', match));
      const count = docs.filter((d) => d.visibleAt <= Date.now() && match(d.source)).length;
      return send(res, 200, { count, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 } });
    }
    if (m[2] === '_search' && (req.method === 'POST' || req.method === 'GET')) {
      if (store.hang) return;
      const docs = matching(indices, index);
      if (docs === undefined) {
        return send(
          res,
          404,
          esError(404, 'index_not_found_exception', `no such index [${index}]`, { 'resource.type': 'index_or_alias', index }),
        );
      }
      const f = store.failSearch;
      if (f !== undefined && 'status' in f && forced(res, f)) return;
      let body: { query?: unknown; size?: number };
      try {
        body = req.body === '' ? {} : JSON.parse(req.body);
      } catch {
        return send(res, 400, esError(400, 'parsing_exception', 'Unknown key for a VALUE_STRING in [query].'));
      }
      const match = compileQuery(body.query ?? { match_all: {} }, new Set(opts.keywordFields ?? []));
      if (typeof match === 'string') return send(res, 400, esError(400, 'parsing_exception', match));
      const shardsFailed = f !== undefined && 'shardsFailed' in f && f.times !== 0 ? f.shardsFailed : 0;
      if (shardsFailed > 0 && f !== undefined && f.times !== undefined) f.times -= 1;
      // The failed shards are the ones holding the documents: a partial answer with no hits.
      const hits = shardsFailed > 0 ? [] : docs.filter((d) => d.visibleAt <= Date.now() && match(d.source));
      return send(res, 200, searchResponse(index, hits.slice(0, body.size ?? 10), hits.length, shardsFailed));
    }
    send(res, 405, esError(405, 'illegal_argument_exception', `Incorrect HTTP method for uri [${req.path}] and method [${req.method}]`));
  });
  return Object.assign(store, {
    ...http,
    searches: () => http.requests.filter((r) => r.path.endsWith('/_search')),
    docs: (index: string) => (indices.get(index) ?? []).map((d) => d.source),
    counts: () => http.requests.filter((r) => r.path.endsWith('/_count')),
    add(index: string, source: Record<string, unknown>) {
      const docs = indices.get(index) ?? [];
      docs.push({ id: `fake${String(nextId++).padStart(16, '0')}`, source, visibleAt: 0 });
      indices.set(index, docs);
    },
  }) as FakeElasticsearch;
}

/** The documents of every index a name, a pattern (`logs-*`) or a comma list selects; undefined when a plain name is missing. */
function matching(indices: Map<string, EsDoc[]>, names: string): EsDoc[] | undefined {
  const out: EsDoc[] = [];
  for (const name of names.split(',')) {
    if (!name.includes('*')) {
      const docs = indices.get(name);
      if (docs === undefined) return undefined;
      out.push(...docs);
      continue;
    }
    const re = new RegExp(
      `^${name
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    for (const [index, docs] of indices) if (re.test(index)) out.push(...docs);
  }
  return out;
}

function esError(status: number, type: string, reason: string, extra: Record<string, unknown> = {}) {
  const cause = { type, reason, ...extra };
  return { error: { root_cause: [cause], ...cause }, status };
}

function indexResponse(flavor: string, index: string, id: string, seq: number) {
  const shards = { total: 2, successful: 1, failed: 0 };
  // Key order as in es-index-doc-response.json and opensearch-index-doc-response.json.
  return flavor === 'opensearch'
    ? { _index: index, _id: id, _version: 1, result: 'created', _shards: shards, _seq_no: seq, _primary_term: 1 }
    : { _shards: shards, _index: index, _id: id, _version: 1, _seq_no: seq, _primary_term: 1, result: 'created' };
}

function searchResponse(index: string, hits: EsDoc[], total: number, shardsFailed: number) {
  const shards = shardsFailed > 0 ? 5 : 1;
  return {
    took: 1,
    timed_out: false,
    _shards: {
      total: shards,
      successful: shards - shardsFailed,
      skipped: 0,
      failed: shardsFailed,
      ...(shardsFailed > 0
        ? {
            failures: [
              {
                shard: 0,
                index,
                node: 'fake-node-1',
                reason: { type: 'node_not_connected_exception', reason: '[fake-node-1][127.0.0.1:9300] Node not connected' },
              },
            ],
          }
        : {}),
    },
    hits: {
      total: { value: total, relation: 'eq' },
      max_score: hits.length > 0 ? 1.3862942 : null,
      hits: hits.map((d) => ({ _index: index, _id: d.id, _score: 1.3862942, _source: d.source })),
    },
  };
}

type Match = (source: Record<string, unknown>) => boolean;

function compileQuery(q: unknown, keywordFields: Set<string>): Match | string {
  if (q === null || typeof q !== 'object') return 'query malformed, must start with start_object';
  const [type, arg] = Object.entries(q)[0] ?? [];
  if (type === 'match_all') return () => true;
  if (type === 'term') {
    const [field, spec] = Object.entries(arg as object)[0] ?? [];
    if (field === undefined) return 'query malformed, empty clause found';
    const value = spec !== null && typeof spec === 'object' ? (spec as { value?: unknown }).value : spec;
    return (source) => termMatches(source, field, value, keywordFields);
  }
  if (type === 'bool') {
    const b = arg as { must?: unknown[]; filter?: unknown[]; should?: unknown[]; must_not?: unknown[]; minimum_should_match?: number };
    const compile = (list: unknown) =>
      (Array.isArray(list) ? list : list === undefined ? [] : [list]).map((c) => compileQuery(c, keywordFields));
    const must = [...compile(b.must), ...compile(b.filter)];
    const should = compile(b.should);
    const mustNot = compile(b.must_not);
    const bad = [...must, ...should, ...mustNot].find((m): m is string => typeof m === 'string');
    if (bad !== undefined) return bad;
    const min = b.minimum_should_match ?? (must.length === 0 ? 1 : 0);
    return (s) =>
      (must as Match[]).every((m) => m(s)) &&
      !(mustNot as Match[]).some((m) => m(s)) &&
      (should as Match[]).filter((m) => m(s)).length >= Math.min(min, should.length);
  }
  if (type === 'range') {
    const [field, bounds] = Object.entries(arg as object)[0] ?? [];
    if (field === undefined) return 'query malformed, empty clause found';
    const b = bounds as { gte?: string | number; gt?: string | number; lte?: string | number; lt?: string | number };
    const t = (v: unknown) => (typeof v === 'number' ? v : Date.parse(String(v)));
    return (source) => {
      const v = t(sourceValue(source, field));
      if (Number.isNaN(v)) return false;
      return (
        (b.gte === undefined || v >= t(b.gte)) &&
        (b.gt === undefined || v > t(b.gt)) &&
        (b.lte === undefined || v <= t(b.lte)) &&
        (b.lt === undefined || v < t(b.lt))
      );
    };
  }
  if (type === 'query_string') {
    // Enough of the syntax for the tests: a quoted phrase, or terms that must all appear, in any field.
    const text = String((arg as { query?: unknown }).query ?? '');
    const terms = /^".*"$/.test(text) ? [JSON.parse(text) as string] : text.split(/\s+/).filter((t) => t !== '' && t !== 'AND');
    return (source) => {
      const all = JSON.stringify(source).toLowerCase();
      return terms.every((t) => all.includes(t.toLowerCase()));
    };
  }
  if (type === 'regexp') {
    const [field, spec] = Object.entries(arg as object)[0] ?? [];
    if (field === undefined) return 'query malformed, empty clause found';
    const re = new RegExp(`^(?:${typeof spec === 'string' ? spec : (spec as { value: string }).value})$`);
    // Lucene regexps match whole tokens of a text field: the fake splits on whitespace.
    return (source) =>
      String(sourceValue(source, field) ?? '')
        .split(/\s+/)
        .some((tok) => re.test(tok));
  }
  return `unknown query [${type}]`;
}

/** A term query against dynamic mapping: exact on keyword fields, one analysed token on text fields. */
function termMatches(source: Record<string, unknown>, field: string, value: unknown, keywordFields: Set<string>): boolean {
  const sub = field.endsWith('.keyword') && !keywordFields.has(field) ? field.slice(0, -'.keyword'.length) : undefined;
  const stored = sourceValue(source, sub ?? field);
  if (typeof stored === 'string') {
    if (sub !== undefined) return !keywordFields.has(sub) && stored.length <= 256 && stored === value;
    if (keywordFields.has(field)) return stored === value;
    return stored
      .toLowerCase()
      .split(/[^\p{L}\p{N}_]+/u)
      .includes(String(value));
  }
  return sub === undefined && stored !== undefined && stored === value;
}

function sourceValue(source: Record<string, unknown>, field: string): unknown {
  if (Object.hasOwn(source, field)) return source[field];
  let cur: unknown = source;
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

// ------------------------------------------------------------------------------ a generic event API

/**
 * A store with a plain JSON API, for the generic http backend: `POST /v1/events` (any JSON object)
 * → 202, `GET /v1/events?q=TEXT` → `{"data":{"events":[…]}}`, the events whose JSON contains TEXT.
 */
export async function startEventApi(opts: { delayMs?: number } = {}): Promise<FakeEventApi> {
  const events: Array<{ event: unknown; visibleAt: number }> = [];
  const store: Partial<FakeEventApi> = { delayMs: opts.delayMs ?? 0 };
  const http = await serve((req, res) => {
    if (req.method === 'POST' && req.path === '/v1/events') {
      if (forced(res, store.rejectWrites)) return;
      try {
        events.push({ event: JSON.parse(req.body), visibleAt: Date.now() + (store.delayMs ?? 0) });
      } catch {
        return send(res, 400, { error: 'body is not JSON' });
      }
      return send(res, 202, { accepted: 1 });
    }
    if (req.method === 'GET' && req.path === '/v1/count') {
      if (store.hang) return;
      if (forced(res, store.failSearch)) return;
      // Events in [from, to) by their `timestamp`, whose JSON contains q.
      const q = req.query.get('q') ?? '';
      const from = Date.parse(req.query.get('from') ?? '');
      const to = Date.parse(req.query.get('to') ?? '');
      if (Number.isNaN(from) || Number.isNaN(to)) return send(res, 400, { error: 'from and to must be RFC 3339 times' });
      const found = events
        .filter((e) => e.visibleAt <= Date.now() && JSON.stringify(e.event).includes(q))
        .map((e) => e.event as Record<string, unknown>)
        .filter((e) => {
          const at = Date.parse(String(e.timestamp));
          return at >= from && at < to;
        });
      return send(res, 200, { data: { total: found.length, events: found.slice(0, 5) } });
    }
    if (req.method === 'GET' && req.path === '/v1/events') {
      if (store.hang) return;
      if (forced(res, store.failSearch)) return;
      const q = req.query.get('q') ?? '';
      const found = events.filter((e) => e.visibleAt <= Date.now() && JSON.stringify(e.event).includes(q)).map((e) => e.event);
      return send(res, 200, { data: { events: found }, meta: { count: found.length } });
    }
    send(res, 404, { error: 'not found' });
  });
  return Object.assign(store, {
    ...http,
    searches: () => http.requests.filter((r) => r.method === 'GET'),
    add: (event: Record<string, unknown>) => events.push({ event, visibleAt: 0 }),
  }) as FakeEventApi;
}
