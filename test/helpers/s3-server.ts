import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** The keys s3rver accepts (it knows one account). It checks the key id; it does not verify V4 signatures. */
export const S3RVER_KEY = 'S3RVER';

/** An S3-compatible server (s3rver, in this process) on a free loopback port, storing in a temp folder. */
export interface TestS3 {
  endpoint: string;
  port: number;
  /** A bucket that exists. */
  bucket: string;
  /** Where s3rver keeps objects and the parts of unfinished multipart uploads. */
  dir: string;
  /** The keys under `prefix`, as a ListObjectsV2 sees them. */
  keys(prefix?: string): Promise<string[]>;
  /** Multipart uploads s3rver still holds parts for (folders named by upload id). */
  pendingUploads(): string[];
  close(): Promise<void>;
}

export async function startS3(bucket = 'canary'): Promise<TestS3> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-s3-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
  });
  return {
    endpoint,
    port: address.port,
    bucket,
    dir,
    async keys(prefix = '') {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key ?? '');
    },
    pendingUploads() {
      return uploadFolders(dir).map((f) => path.basename(f));
    },
    async close() {
      client.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The folders s3rver keeps an unfinished multipart upload's parts in: `<bucket>/…/uploads/<id>`. */
export function uploadFolders(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const full = path.join(d, entry.name);
      if (path.basename(d).includes('uploads')) found.push(full);
      else walk(full);
    }
  };
  walk(dir);
  return found;
}
