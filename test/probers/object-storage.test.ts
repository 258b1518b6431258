/**
 * The object-storage kind against s3rver (an S3-compatible server in Node, in this process), with a
 * small proxy in front of it for the misbehaviours s3rver does not have: a corrupted download, a
 * refused signature (s3rver does not verify V4 signatures), a part upload that fails or hangs.
 */
import { readFileSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { objectStorage } from '../../src/probers/object-storage.js';
import { probeContext } from '../helpers/context.js';
import { S3RVER_KEY, startS3, type TestS3, uploadFolders } from '../helpers/s3-server.js';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type Def = Parameters<typeof objectStorage.probe>[0];

function load(fields: Record<string, unknown>): { def: Def; problems: string[] } {
  const schema = definitionSchema(objectStorage.schema as TObject);
  const def = Value.Default(schema, { id: 's3-test', kind: 'object-storage', schedule: '* * * * *', ...fields }) as Def;
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return { def, problems: errors };
  return { def, problems: (objectStorage.check?.(def) ?? []).map((p) => `${p.path}: ${p.message}`) };
}

function spec(fields: Record<string, unknown>): Def {
  const { def, problems } = load(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return def;
}

type Mode = 'pass' | 'corrupt' | 'refuse-signature' | 'fail-part' | 'hang-part';

/** A proxy in front of s3rver that misbehaves on demand and records what vigil asked for. */
interface Proxy {
  endpoint: string;
  mode: Mode;
  requests: string[];
  /** Connections from vigil still open. */
  live: Set<Socket>;
  close(): Promise<void>;
}

const S3_ERROR = (code: string, message: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>1</RequestId></Error>`;

async function startProxy(s3: TestS3): Promise<Proxy> {
  const live = new Set<Socket>();
  const proxy: Proxy = { endpoint: '', mode: 'pass', requests: [], live, close: async () => {} };
  const server = http.createServer((req, res) => handle(proxy, s3, req, res));
  server.on('connection', (socket) => {
    live.add(socket);
    socket.on('close', () => live.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of live) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}

function handle(proxy: Proxy, s3: TestS3, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://proxy');
  proxy.requests.push(`${req.method} ${url.pathname}${url.search}`);
  const part = Number(url.searchParams.get('partNumber') ?? 0);
  const uploadId = url.searchParams.get('uploadId');
  if (proxy.mode === 'refuse-signature') {
    // As AWS answers a wrong secret: the error carries the signature sent and the string signed.
    const signature = /Signature=([0-9a-f]+)/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end(
      S3_ERROR(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        `<AWSAccessKeyId>${S3RVER_KEY}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256</StringToSign><SignatureProvided>${signature}</SignatureProvided>`,
      ),
    );
    req.resume();
    return;
  }
  if (proxy.mode === 'fail-part' && req.method === 'PUT' && part === 2) {
    req.resume();
    res.writeHead(500, { 'content-type': 'application/xml' });
    res.end(S3_ERROR('InternalError', 'We encountered an internal error. Please try again.'));
    return;
  }
  // Takes the last part and never answers: a store stuck mid-upload. (It keeps reading, so it
  // sees vigil hang up: a paused socket would never notice the close.)
  if (proxy.mode === 'hang-part' && req.method === 'PUT' && part === 3) {
    req.resume();
    return;
  }
  if (req.method === 'DELETE' && uploadId !== null) {
    // s3rver has no AbortMultipartUpload (it answers 405): do what S3 does, drop the upload's parts.
    const folders = uploadFolders(s3.dir).filter((f) => f.endsWith(uploadId));
    for (const f of folders) rmSync(f, { recursive: true, force: true });
    req.resume();
    res.writeHead(folders.length > 0 ? 204 : 404, { 'content-type': 'application/xml' });
    res.end(folders.length > 0 ? undefined : S3_ERROR('NoSuchUpload', 'The specified upload does not exist.'));
    return;
  }
  const upstream = http.request({ host: '127.0.0.1', port: s3.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    // A GetObject (a path with a key), not a listing.
    const corrupt = proxy.mode === 'corrupt' && req.method === 'GET' && url.pathname.split('/').length > 2;
    let flipped = false;
    answer.on('data', (chunk: Buffer) => {
      if (corrupt && !flipped && chunk.length > 100) {
        chunk[100] = (chunk[100] ?? 0) ^ 0xff;
        flipped = true;
      }
      res.write(chunk);
    });
    answer.on('end', () => {
      res.end();
      // s3rver may answer (a 404, a 403) before it has read the body: drain the rest, or the
      // paused socket would never notice vigil hanging up.
      req.unpipe(upstream);
      req.resume();
    });
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

let s3: TestS3;
let proxy: Proxy;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startProxy(s3);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
});
beforeEach(() => {
  proxy.mode = 'pass';
  proxy.requests = [];
});
// Every run, passed or failed, closes what it opened.
afterEach(async () => {
  await waitFor(
    'the run to close its connections',
    () => proxy.live.size === 0,
    5_000,
    () => `${proxy.live.size} open after ${proxy.requests.join(', ')}`,
  );
});

const base = () => ({
  endpoint: proxy.endpoint,
  bucket: s3.bucket,
  forcePathStyle: true,
  accessKeyId: S3RVER_KEY,
  secretAccessKey: S3RVER_KEY,
});

/** vigil's connections to the proxy are all closed, and nothing of the run is left in the bucket or on disk. */
async function expectNothingLeft(): Promise<void> {
  await waitFor(
    'the run to close its connections',
    () => proxy.live.size === 0,
    5_000,
    () => `${proxy.live.size} open`,
  );
  expect(await s3.keys()).toEqual([]);
  expect(s3.pendingUploads()).toEqual([]);
}

describe('object-storage definitions', () => {
  it('takes a size as 1MiB or 100MB, and refuses one past 5 GiB or not a size', () => {
    expect(spec({ ...base(), size: '100MB' }).size).toBe('100MB');
    expect(spec(base()).size).toBe('1MiB');
    expect(load({ ...base(), size: '6GiB' }).problems).toEqual(['size: expected a size from 1B to 5GiB, got 6GiB']);
    expect(load({ ...base(), size: '1 MiB' }).problems.join()).toMatch(/^\/size: /);
    expect(load({ ...base(), endpoint: 'http://key:secret@s3.internal' }).problems.join()).toMatch(/^\/endpoint: /);
  });

  it('names its target as endpoint host and bucket, the AWS host for its region when no endpoint', () => {
    expect(objectStorage.report.target(spec(base()))).toBe(`${new URL(proxy.endpoint).host}/canary`);
    const { endpoint: _, ...aws } = base();
    expect(objectStorage.report.target(spec({ ...aws, region: 'eu-west-3' }))).toBe('s3.eu-west-3.amazonaws.com/canary');
  });
});

describe('object-storage runs', () => {
  it('round-trips 1 MiB: uploaded, read back intact, deleted, with its rates', async () => {
    const result = await objectStorage.probe(spec(base()), probeContext(10_000));
    expect(result).toMatchObject({ ok: true, values: { size_bytes: 1_048_576 } });
    expect(result.values.upload_mbps).toBeGreaterThan(0);
    expect(result.values.download_mbps).toBeGreaterThan(0);
    expect(result.values.round_trip_s).toBeGreaterThan(0);
    // One PUT (no multipart below the part size), one GET, one DELETE.
    expect(proxy.requests.map((r) => r.split(' ')[0])).toEqual(['PUT', 'GET', 'DELETE']);
    await expectNothingLeft();
  });

  it('round-trips 20 MiB as a multipart upload', async () => {
    const result = await objectStorage.probe(spec({ ...base(), size: '20MiB' }), probeContext(10_000));
    expect(result).toMatchObject({ ok: true, values: { size_bytes: 20 * 1_048_576 } });
    expect(proxy.requests.filter((r) => /^POST .*\?uploads/.test(r))).toHaveLength(1);
    expect(proxy.requests.filter((r) => /^PUT .*partNumber=/.test(r))).toHaveLength(3);
    await expectNothingLeft();
  });

  it('fails an access key the store does not know as AUTH, naming the field to check', async () => {
    const result = await objectStorage.probe(spec({ ...base(), accessKeyId: 'AKIAWRONGKEY0000' }), probeContext(5_000));
    expect(result.ok).toBe(false);
    expect(result.code).toBe('AUTH');
    expect(result.message).toMatch(/InvalidAccessKeyId.*check accessKeyId/);
  });

  it('fails a wrong secret as AUTH, without the signature the error carries', async () => {
    proxy.mode = 'refuse-signature';
    const secret = 'wrong-secret-Zq81';
    const result = await objectStorage.probe(spec({ ...base(), secretAccessKey: secret }), probeContext(5_000));
    expect(result.code).toBe('AUTH');
    expect(result.message).toMatch(/SignatureDoesNotMatch.*check secretAccessKey/);
    const text = JSON.stringify(result);
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    expect(text).not.toContain('StringToSign');
  });

  it('fails a bucket that does not exist, naming it', async () => {
    const result = await objectStorage.probe(spec({ ...base(), bucket: 'no-such-bucket' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'NO_SUCH_BUCKET' });
    expect(result.message).toContain('no-such-bucket');
  });

  it('fails a download that differs from the upload as ASSERTION, and still deletes the object', async () => {
    proxy.mode = 'corrupt';
    const result = await objectStorage.probe(spec(base()), probeContext(10_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toMatch(/came back corrupted: SHA-256/);
    expect(result.details?.uploadedSha256).not.toBe(result.details?.downloadedSha256);
    await expectNothingLeft();
  });

  it('aborts the multipart upload when a part fails mid-way: nothing is left in the bucket', async () => {
    proxy.mode = 'fail-part';
    const result = await objectStorage.probe(spec({ ...base(), size: '20MiB' }), probeContext(10_000));
    expect(result).toMatchObject({ ok: false, code: 'HTTP_STATUS' });
    expect(result.message).toMatch(/HTTP 500 uploading 20 MiB/);
    expect(result.message).not.toMatch(/cleanup failed/);
    expect(proxy.requests.filter((r) => /^DELETE .*uploadId=/.test(r)).length).toBeGreaterThan(0);
    await expectNothingLeft();
  });

  it('times out at the deadline against a store that hangs mid-upload, aborts the upload and closes its sockets', async () => {
    proxy.mode = 'hang-part';
    const started = performance.now();
    const result = await objectStorage.probe(spec({ ...base(), size: '20MiB' }), probeContext(2_000));
    const took = performance.now() - started;
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(/^timed out after [12]\.\d+s uploading 20 MiB to /);
    expect(took).toBeLessThan(2_000 + (objectStorage.abortGraceMs?.(spec(base())) ?? 0));
    // The upload had started (parts stored) and was aborted after the deadline.
    expect(proxy.requests.filter((r) => /^DELETE .*uploadId=/.test(r)).length).toBeGreaterThan(0);
    await expectNothingLeft();
  });

  it('fails an endpoint nothing listens on as CONNECT', async () => {
    const port = await closedPort();
    const result = await objectStorage.probe(spec({ ...base(), endpoint: `http://127.0.0.1:${port}` }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(result.message).toContain(`cannot connect to 127.0.0.1:${port}: connection refused`);
  });
});

describe('object-storage examples', () => {
  it('ships examples that validate', () => {
    const defs = parse(readFileSync('probes/examples/object-storage.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(0);
    for (const raw of defs) expect(load(raw).problems).toEqual([]);
  });
});
