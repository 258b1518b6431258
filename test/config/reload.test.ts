import type { TObject, TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, LIVE, RESTART_ONLY, restartOnlyChanges, type ServiceConfig } from '../../src/config/index.js';

/** A config with the parts the tests change; the rest as the schema's defaults would leave them (equal on both sides). */
const base = (over: Record<string, unknown> = {}) =>
  ({
    service: { name: 'vigil', host: '0.0.0.0', port: 8080, logLevel: 'info', shutdownTimeout: '10s' },
    storage: {
      sqlite: { path: './data/vigil.db' },
      retention: { runs: '90d', audit: '400d' },
      batch: { maxRows: 5000, interval: '200ms' },
    },
    cluster: { leaseTtl: '15s', feedInterval: '500ms' },
    interactions: { linkTtl: '24h' },
    channels: {},
    ...over,
  }) as unknown as ServiceConfig;

describe('reload: what only a restart applies', () => {
  it('names every key of the config schema as either live or restart-only, so a new key is a decision', () => {
    const keys: string[] = [];
    for (const [section, schema] of Object.entries(ConfigSchema.properties as Record<string, TSchema>)) {
      const props = (schema as TObject).properties as Record<string, TSchema> | undefined;
      const listed = [...LIVE, ...RESTART_ONLY] as string[];
      if (listed.includes(section) || props === undefined) keys.push(section);
      else keys.push(...Object.keys(props).map((k) => `${section}.${k}`));
    }
    expect(keys.filter((k) => !(LIVE as readonly string[]).includes(k) && !(RESTART_ONLY as readonly string[]).includes(k))).toEqual([]);
    expect(RESTART_ONLY).toContain('cluster');
  });

  it('lists each restart-only change with its old and new value, secrets and whole sections only as changed', () => {
    const old = base();
    const next = base({
      service: { ...old.service, port: 9090, name: 'shop' },
      storage: {
        ...old.storage,
        postgres: { url: 'postgresql://vigil:hunter2-secret@db/vigil' },
        retention: { runs: '30d', audit: '400d' },
      },
      cluster: { leaseTtl: '30s', feedInterval: '500ms' },
      interactions: { linkTtl: '1h', linkSecret: 'x'.repeat(40) },
      channels: { ops: { type: 'webhook', url: 'http://hook' } },
    });
    const problems = restartOnlyChanges(old, next);
    expect(problems).toEqual([
      'service.port: changed from 8080 to 9090; takes a restart',
      'storage.postgres: changed; takes a restart',
      'interactions.linkSecret: changed; takes a restart',
      'cluster: changed; takes a restart',
    ]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('finds nothing to refuse when only live keys changed', () => {
    const old = base();
    expect(
      restartOnlyChanges(
        old,
        base({ service: { ...old.service, name: 'shop', shutdownTimeout: '30s' }, channels: { ops: { type: 'slack' } } }),
      ),
    ).toEqual([]);
  });
});
