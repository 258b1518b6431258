import { createCipheriv, createHash, type Hash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { fieldOf } from '../lib/fields.js';
import { lazy } from '../lib/lazy.js';
import { bytes, formatSize, SIZE_PATTERN } from '../lib/size.js';
import { connectReason, DNS_ERRORS } from './sockets.js';
import { trustedCas } from './tls-common.js';
import {
  checkEntry,
  defineProber,
  type FailureCode,
  type ProbeBase,
  type ProbeContext,
  type ProbeResult,
  type SpecProblem,
} from './types.js';

const schema = Type.Object(
  {
    /** The S3 API's base URL (MinIO, Ceph, R2, …); AWS's own endpoint for `region` when absent. */
    endpoint: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s/@?#]+/?$',
        expected: 'an http:// or https:// URL of the S3 API: scheme, host and port only, no credentials',
      }),
    ),
    region: Type.String({ default: 'us-east-1', pattern: '^[a-z0-9-]+$', expected: 'a region name such as us-east-1' }),
    bucket: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$', expected: 'a bucket name' }),
    /** Where the canary objects go; each run writes one object under it and deletes it. */
    prefix: Type.String({ default: 'vigil-canary/', maxLength: 512, pattern: '^[^\\x00-\\x1f]*$', expected: 'a key prefix' }),
    /** `${…}` references, never literal keys: the run's messages and records never carry them. */
    accessKeyId: Type.String({ minLength: 1, expected: 'an access key id, as a ${…} reference' }),
    secretAccessKey: Type.String({ minLength: 1, expected: 'a secret access key, as a ${…} reference' }),
    /** For temporary credentials (STS). */
    sessionToken: Type.Optional(Type.String({ minLength: 1, expected: 'a session token, as a ${…} reference' })),
    /** `https://host/bucket/key` instead of `https://bucket.host/key`: MinIO and most self-hosted stores want it. */
    forcePathStyle: Type.Boolean({ default: false }),
    /** The canary object's size; past the part size (8 MiB) it goes up as a multipart upload. */
    size: Type.String({ pattern: SIZE_PATTERN, default: '1MiB', expected: 'a size like 1MiB, 512KiB or 100MB' }),
    /** Extra trusted CA certificates in PEM for an https endpoint; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** Accept any certificate (TLS still happens); for self-signed stores. */
    insecure: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

/** The `object-storage` kind's own fields of a probe definition. */
export type ObjectStorageSpec = Static<typeof schema>;
type Spec = ProbeBase & ObjectStorageSpec;

/** The largest canary a run writes: S3's own limit for one PUT, and far past what a health check needs. */
const MAX_SIZE = 5 * 1024 ** 3;
/**
 * Parts of a multipart upload, and how many go at once: lib-storage buffers queueSize × partSize,
 * so a run holds about 16 MiB of the object whatever its size.
 */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
/** The generator's step: the payload is made and hashed this much at a time. */
const CHUNK = 64 * 1024;
/** How long removing a failed run's leftovers may take after the run's end (the kind's abort grace covers it). */
const CLEANUP_MS = 2_000;

export const objectStorage = defineProber({
  schema,
  report: {
    target: (spec) => `${hostOf(spec)}/${spec.bucket}`,
    evidence: (spec, w) => checkEntry('objectStorage', spec.id, `${hostOf(spec)}/${spec.bucket}`, w),
  },
  values: () => ['upload_mbps', 'download_mbps', 'round_trip_s', 'size_bytes'],
  // Ten seconds is short for a large canary on a slow link: 30 s, and 1 s more for every 4 MB.
  defaultTimeout: (spec) => formatDuration(30_000 + Math.ceil(bytes(spec.size) / 4e6) * 1_000),
  // The cleanup of a run cut short (abort the multipart upload, delete the object) happens after the abort.
  abortGraceMs: () => CLEANUP_MS + 500,
  check(spec) {
    const problems: SpecProblem[] = [];
    const size = bytes(spec.size);
    if (size < 1 || size > MAX_SIZE) problems.push({ path: 'size', message: `expected a size from 1B to 5GiB, got ${spec.size}` });
    if (spec.ca !== undefined && spec.endpoint?.startsWith('http://'))
      problems.push({ path: 'ca', message: 'the endpoint is plain http: a CA means nothing there (use https:// or drop ca)' });
    return problems;
  },
  probe: (spec, ctx) => roundTrip(spec, ctx),
});

/** The host a definition talks to: its endpoint's, or AWS's for its region. */
function hostOf(spec: Spec): string {
  return spec.endpoint === undefined ? `s3.${spec.region}.amazonaws.com` : new URL(spec.endpoint).host;
}

/** The AWS SDK, loaded by the first run of the kind (~45 MB of RSS imported alone, which a config without one never pays). */
const sdkLib = lazy(async () => {
  const [s3, storage] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
  return { ...s3, Upload: storage.Upload };
});
type Sdk = Awaited<ReturnType<typeof sdkLib>>;

type Stage = 'upload' | 'download' | 'delete';
const DOING: Record<Stage, string> = { upload: 'uploading', download: 'downloading', delete: 'deleting' };

/** One run: upload, download, compare, delete; on any failure nothing of the run is left in the bucket. */
async function roundTrip(spec: Spec, ctx: ProbeContext): Promise<ProbeResult> {
  const size = bytes(spec.size);
  const key = `${spec.prefix}${new Date(ctx.clock.now()).toISOString().replace(/[:.]/g, '-')}-${randomUUID()}`;
  const uploads = new Set<string>();
  const sdk = await sdkLib();
  const client = createClient(sdk, spec, ctx.signal, uploads);
  const values: Record<string, number> = { size_bytes: size };
  const start = ctx.clock.now();
  let stage: Stage = 'upload';
  try {
    const sent = await upload(sdk, client, spec.bucket, key, size);
    // The upload is complete: nothing of it is left to abort, only the object to delete.
    uploads.clear();
    const uploaded = ctx.clock.now();
    values.upload_mbps = mbps(size, uploaded - start);
    stage = 'download';
    const got = await download(sdk, client, spec.bucket, key, ctx.signal);
    const downloaded = ctx.clock.now();
    values.download_mbps = mbps(got.bytes, downloaded - uploaded);
    stage = 'delete';
    await client.send(new sdk.DeleteObjectCommand({ Bucket: spec.bucket, Key: key }), { abortSignal: ctx.signal });
    values.round_trip_s = (ctx.clock.now() - start) / 1_000;
    const where = `${hostOf(spec)}/${spec.bucket}/${key}`;
    if (got.bytes !== size)
      return { ok: false, code: 'ASSERTION', message: `${where} came back ${got.bytes} bytes long, not the ${size} uploaded`, values };
    if (got.sha256 !== sent.sha256) {
      return {
        ok: false,
        code: 'ASSERTION',
        message: `${where} came back corrupted: SHA-256 ${got.sha256.slice(0, 16)}… of ${formatSize(size)} downloaded, ${sent.sha256.slice(0, 16)}… uploaded`,
        values,
        details: { uploadedSha256: sent.sha256, downloadedSha256: got.sha256 },
      };
    }
    return { ok: true, values };
  } catch (err) {
    const failure = failureOf(err, spec, stage, ctx, ctx.clock.now() - start);
    // Refused before anything was stored (wrong key, no bucket): a cleanup would only be refused too.
    const refused = stage === 'upload' && uploads.size === 0 && (failure.code === 'AUTH' || failure.code === 'NO_SUCH_BUCKET');
    const leftover = refused ? undefined : await cleanUp(sdk, client, spec.bucket, key, uploads);
    const message = leftover === undefined ? failure.message : `${failure.message}; ${leftover}`;
    // Run through the probe's redactor too: an SDK error quoted here may come from any server.
    return { ok: false, code: failure.code, message: ctx.redactor?.text(message) ?? message, values, details: { key } };
  } finally {
    // Closes every socket the run opened; a send still in flight fails at once.
    client.destroy();
  }
}

/** A client for one run: no retries (a failed step is the finding), the run's signal on every request, its own sockets. */
function createClient(sdk: Sdk, spec: Spec, signal: AbortSignal, uploads: Set<string>): S3Client {
  const config: S3ClientConfig = {
    region: spec.region,
    credentials: {
      accessKeyId: spec.accessKeyId,
      secretAccessKey: spec.secretAccessKey,
      ...(spec.sessionToken === undefined ? {} : { sessionToken: spec.sessionToken }),
    },
    forcePathStyle: spec.forcePathStyle,
    maxAttempts: 1,
    // The run hashes the whole object end to end; the SDK's own CRC trailers (aws-chunked) are
    // what many S3-compatible stores do not speak.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true, ca: trustedCas(spec.ca), rejectUnauthorized: !spec.insecure }),
    },
    ...(spec.endpoint === undefined ? {} : { endpoint: spec.endpoint }),
  };
  const client = new sdk.S3Client(config);
  // lib-storage sends its requests without a signal: every request without its own one gets the
  // run's, so a hung part upload ends at the deadline too. The cleanup passes its own.
  const handler = client.config.requestHandler;
  const handle = handler.handle.bind(handler);
  handler.handle = (request, options) => handle(request, { ...options, abortSignal: fieldOf(options, 'abortSignal') ?? signal });
  // Remember every multipart upload the run starts, so a failed run can abort it (lib-storage
  // only aborts it when its own requests end, which a hung one never does).
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const id = fieldOf(out.output, 'UploadId');
      if (context.commandName === 'CreateMultipartUploadCommand' && typeof id === 'string') uploads.add(id);
      return out;
    },
    { step: 'initialize', name: 'vigilRecordUploadIds' },
  );
  return client;
}

/** Uploads `size` generated bytes through lib-storage, hashing them as they are made: the object is never whole in memory. */
async function upload(sdk: Sdk, client: S3Client, bucket: string, key: string, size: number): Promise<{ sha256: string }> {
  const hash = createHash('sha256');
  const body = payload(size, hash);
  const job = new sdk.Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: body, ContentLength: size, ContentType: 'application/octet-stream' },
    partSize: PART_SIZE,
    queueSize: QUEUE_SIZE,
    leavePartsOnError: false,
  });
  try {
    await job.done();
  } finally {
    body.destroy();
  }
  return { sha256: hash.digest('hex') };
}

/**
 * `size` pseudo-random bytes, made as they are read: AES-CTR over zeros under a fresh key, so a
 * store that deduplicates or compresses cannot make the run look faster than it is.
 */
function payload(size: number, hash: Hash): Readable {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(CHUNK);
  let left = size;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, left);
      const chunk = cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n));
      left -= n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

/** Downloads the object as a stream, hashing and counting it: never whole in memory either. */
async function download(
  sdk: Sdk,
  client: S3Client,
  bucket: string,
  key: string,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number }> {
  const out = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  const body = out.Body;
  if (!(body instanceof Readable)) throw new TypeError('the SDK returned no readable body');
  const hash = createHash('sha256');
  let count = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      count += chunk.length;
      hash.update(chunk);
      done();
    },
  });
  await pipeline(body, sink, { signal });
  return { sha256: hash.digest('hex'), bytes: count };
}

/**
 * Removes what a failed run may have left: its multipart uploads (their parts are billed and
 * invisible to a listing) and its object. Says what may be left when it could not.
 */
async function cleanUp(sdk: Sdk, client: S3Client, bucket: string, key: string, uploads: Set<string>): Promise<string | undefined> {
  const signal = AbortSignal.timeout(CLEANUP_MS);
  const problems: string[] = [];
  for (const id of uploads) {
    try {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }), { abortSignal: signal });
    } catch (err) {
      if (fieldOf(err, 'name') !== 'NoSuchUpload') problems.push(`the multipart upload ${id} may be left (${briefly(err)})`);
    }
  }
  try {
    await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  } catch (err) {
    // A bucket that does not exist holds nothing to delete.
    if (fieldOf(err, 'name') !== 'NoSuchBucket') problems.push(`${key} may be left (${briefly(err)})`);
  }
  return problems.length === 0 ? undefined : `cleanup failed: ${problems.join(', ')}`;
}

interface Failure {
  code: FailureCode;
  message: string;
}

/** What a failed step means for the person paged, from the SDK's error: its name and status, never its raw text for auth. */
function failureOf(err: unknown, spec: Spec, stage: Stage, ctx: ProbeContext, elapsed: number): Failure {
  const host = hostOf(spec);
  const doing = `${DOING[stage]} ${formatSize(bytes(spec.size))} ${stage === 'download' ? 'from' : 'to'} ${host}/${spec.bucket}`;
  if (ctx.signal.aborted) return { code: 'TIMEOUT', message: `timed out after ${formatDuration(elapsed)} ${doing}` };
  const name = String(fieldOf(err, 'name') ?? '');
  const status = fieldOf(fieldOf(err, '$metadata'), 'httpStatusCode');
  if (name === 'InvalidAccessKeyId')
    return { code: 'AUTH', message: `${host} does not know the access key id (InvalidAccessKeyId) ${doing}: check accessKeyId` };
  if (name === 'SignatureDoesNotMatch') {
    return {
      code: 'AUTH',
      message: `${host} refused the request signature (SignatureDoesNotMatch) ${doing}: check secretAccessKey (and region)`,
    };
  }
  if (name === 'ExpiredToken' || name === 'InvalidToken' || name === 'TokenRefreshRequired')
    return { code: 'AUTH', message: `${host} refused the session token (${name}) ${doing}: renew sessionToken` };
  if (name === 'AccessDenied' || status === 403) {
    const needs = stage === 'upload' ? 's3:PutObject' : stage === 'download' ? 's3:GetObject' : 's3:DeleteObject';
    return {
      code: 'AUTH',
      message: `access denied ${doing} (${name || 'HTTP 403'}): the key needs ${needs} on ${spec.bucket}/${spec.prefix}*`,
    };
  }
  if (name === 'NoSuchBucket')
    return {
      code: 'NO_SUCH_BUCKET',
      message: `the bucket ${spec.bucket} does not exist on ${host} (NoSuchBucket): check bucket and region`,
    };
  const code = codeOf(err);
  if (DNS_ERRORS.has(code)) return { code: 'DNS', message: `DNS lookup of ${new URL(`http://${host}`).hostname} failed: ${code}` };
  const reason = connectReason(code);
  if (reason !== undefined) return { code: 'CONNECT', message: `cannot connect to ${host}: ${reason} (${code}) ${doing}` };
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN')
    return { code: 'TLS', message: `TLS with ${host} failed: ${code} (add its CA with ca:, or insecure: true)` };
  if (typeof status === 'number') return { code: 'HTTP_STATUS', message: `${host} answered HTTP ${status} ${doing}: ${briefly(err)}` };
  return { code: 'PROTOCOL', message: `${doing} failed: ${briefly(err)}` };
}

/** An error in a few words: the S3 error name and the first line of its message, cut short. */
function briefly(err: unknown): string {
  const name = String(fieldOf(err, 'name') ?? '');
  const text = messageOf(err).split('\n')[0] ?? '';
  const said = text.length > 160 ? `${text.slice(0, 160)}…` : text;
  return name && name !== 'Error' && !said.startsWith(name) ? `${name}: ${said}` : said;
}

/** MB/s (10⁶ bytes a second), the checklist's unit for a transfer. */
function mbps(n: number, millis: number): number {
  return n / 1e6 / Math.max(millis / 1_000, 0.001);
}
