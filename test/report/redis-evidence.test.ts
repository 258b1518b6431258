import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import type { buildReport } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's cache persistence and replication items, from redis probes through the report to
// the scorecard: a definition with persistence proves the cache item, a replica with a lag bound
// proves replication, one that sets both proves persistence only (one entry per definition).

const NOW = Date.UTC(2026, 11, 2, 12);

const redis = (id: string, fields: Record<string, unknown>) =>
  ({
    id,
    kind: 'redis',
    labels: {},
    url: 'redis://:hunter2@cache.internal:6379',
    canary: true,
    insecure: false,
    ...fields,
  }) as unknown as ProbeDefinition;

const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures });

const item = (r: Awaited<ReturnType<typeof buildReport>>, id: string) => r.scorecard.items.find((i) => i.id === id);

describe('report: redis probes as cache persistence and replication evidence', () => {
  it('puts each definition in its sections (both for one that checks both), its target without the password', async () => {
    const r = await report(
      [
        redis('cache-rdb', { persistence: 'rdb' }),
        redis('cache-replica', { url: 'redis://replica.internal:6379', canary: false, role: 'replica', maxReplicationLag: '15s' }),
        redis('cache-both', {
          url: 'redis://replica2.internal:6379',
          canary: false,
          persistence: 'any',
          role: 'replica',
          maxReplicationLag: '15s',
        }),
        redis('cache-canary', {}),
      ],
      { 'cache-replica': 4 },
    );
    expect(r.checklist.cachePersistence).toEqual([
      { probeId: 'cache-both', target: 'redis://replica2.internal:6379', runs: 1_440, failures: 0, ok: true },
      { probeId: 'cache-rdb', target: 'redis://cache.internal:6379', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(r.checklist.replication).toEqual([
      { probeId: 'cache-both', target: 'redis://replica2.internal:6379', runs: 1_440, failures: 0, ok: true },
      { probeId: 'cache-replica', target: 'redis://replica.internal:6379', runs: 1_440, failures: 4, ok: false },
    ]);
    expect(item(r, 'cache-persistence')).toMatchObject({ status: 'pass' });
    expect(item(r, 'replication')?.status).toBe('fail');
    expect(item(r, 'replication')?.evidence).toContainEqual({
      source: 'probe',
      detail: 'redis://replica.internal:6379 was behind or not replicating in 4 of 1440 runs',
      probes: ['cache-replica'],
    });
    expect(JSON.stringify(r.checklist)).not.toContain('hunter2');
  });
});
