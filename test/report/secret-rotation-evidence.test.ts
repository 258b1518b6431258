import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { secretRotation } from '../../src/probers/secret-rotation.js';
import { type buildReport, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's secret-rotation item ("rotate a secret; confirm all services pick up the new value
// within 5 minutes"): secret-rotation probes are its evidence, through the report to the scorecard.

const NOW = Date.UTC(2026, 10, 26, 12);

/** A definition as the loader makes it (defaults applied), so the report reads real fields. */
const rotation = (id: string, source: string) =>
  Value.Default(definitionSchema(secretRotation.schema), {
    id,
    kind: 'secret-rotation',
    schedule: '* * * * *',
    source: { url: source, headers: { 'X-Vault-Token': '${VAULT_TOKEN}' }, path: 'data.current_version' },
    services: [{ name: 'billing', url: 'http://billing:8080/v', path: 'v' }],
  }) as ProbeDefinition;

/** A probe of another kind, which the item must not take as evidence. */
const tcp = (id: string) =>
  ({
    id,
    kind: 'tcp',
    labels: {},
    host: 'db.example.com',
    port: 5432,
    tls: false,
    steps: [],
    refused: false,
    ipProtocol: 'auto',
  }) as unknown as ProbeDefinition;

/** A report over probes whose windows hold `runs` runs and `failures` failures each. */
const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures });

const item = (r: Awaited<ReturnType<typeof buildReport>>) => r.scorecard.items.find((i) => i.id === 'secret-rotation')!;

describe('report: the secret-rotation checklist item', () => {
  it('takes secret-rotation probes as evidence, targets shown without credentials, and passes when all runs passed', async () => {
    const r = await report([rotation('db-rotation', 'http://ops:hunter22@vault:8200/v1/secret/metadata/db'), tcp('db-port')], {});
    expect(r.checklist.secretRotation).toEqual([
      { probeId: 'db-rotation', target: 'http://vault:8200/v1/secret/metadata/db', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(item(r)).toMatchObject({
      tier: 'important',
      status: 'pass',
      evidence: [
        {
          source: 'probe',
          detail: 'http://vault:8200/v1/secret/metadata/db had every service on the current version in time in all 1440 runs',
          probes: ['db-rotation'],
        },
      ],
    });
    expect(JSON.stringify(r)).not.toContain('hunter22');
  });

  it('fails when a service lagged in any run of the window, and is unknown without such a probe', async () => {
    const r = await report([rotation('db-rotation', 'http://vault:8200/v1/secret/metadata/db')], { 'db-rotation': 4 });
    expect(item(r).status).toBe('fail');
    expect(item(r).evidence).toContainEqual({
      source: 'probe',
      detail: 'http://vault:8200/v1/secret/metadata/db had a service lagging past its bound in 4 of 1440 runs',
      probes: ['db-rotation'],
    });
    expect(renderReportMarkdown(r)).toContain('### Secret rotation (every service on the current version in time)');

    const none = await report([tcp('db-port')], {});
    expect(none.checklist.secretRotation).toEqual([]);
    expect(item(none).status).toBe('unknown');
  });
});
