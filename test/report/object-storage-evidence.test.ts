import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type buildReport, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's object storage item ("upload a 100 MB file, download it, verify the checksum"):
// every object-storage definition is its evidence, through the report to the scorecard.

const NOW = Date.UTC(2026, 10, 26, 12);

const bucket = (id: string, fields: Record<string, unknown> = {}) =>
  ({
    id,
    kind: 'object-storage',
    labels: {},
    region: 'us-east-1',
    bucket: 'app-uploads',
    prefix: 'vigil-canary/',
    accessKeyId: 'AKIAEXAMPLE',
    secretAccessKey: 'example',
    forcePathStyle: true,
    size: '100MB',
    insecure: false,
    endpoint: 'https://minio.internal.example.com:9000',
    ...fields,
  }) as unknown as ProbeDefinition;

const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 48) => reportOver(probes, { now: NOW, runs, failures });

const item = (r: Awaited<ReturnType<typeof buildReport>>) => r.scorecard.items.find((i) => i.id === 'object-storage')!;

describe('report: the object storage checklist item', () => {
  it('takes each object-storage probe as evidence under its endpoint host and bucket, and passes when every run did', async () => {
    const { endpoint: _, ...aws } = bucket('s3-backups', { bucket: 'acme-backups', region: 'eu-west-1' }) as unknown as Record<
      string,
      unknown
    >;
    const r = await report([bucket('minio-uploads'), aws as unknown as ProbeDefinition], {});
    expect(r.checklist.objectStorage).toEqual([
      { probeId: 'minio-uploads', target: 'minio.internal.example.com:9000/app-uploads', runs: 48, failures: 0, ok: true },
      { probeId: 's3-backups', target: 's3.eu-west-1.amazonaws.com/acme-backups', runs: 48, failures: 0, ok: true },
    ]);
    expect(item(r)).toMatchObject({ tier: 'important', status: 'pass' });
  });

  it('fails when a round trip failed in the window, and is not a pass without runs', async () => {
    const r = await report([bucket('minio-uploads')], { 'minio-uploads': 2 });
    expect(item(r).status).toBe('fail');
    expect(renderReportMarkdown(r)).toContain('Object storage (a file uploaded, read back intact, deleted)');

    const idle = await report([bucket('minio-uploads')], {}, 0);
    expect(idle.checklist.objectStorage).toEqual([
      { probeId: 'minio-uploads', target: 'minio.internal.example.com:9000/app-uploads', runs: 0, failures: 0, ok: null },
    ]);
    expect(item(idle).status).not.toBe('pass');
  });
});
