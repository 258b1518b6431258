import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type buildReport, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's queue item ("enqueue a task, verify it is processed"): every queue probe is its
// evidence, named by the broker's URL less its password and the queue, through the report to the scorecard.

const NOW = Date.UTC(2026, 10, 26, 12);

const queueProbe = (id: string, fields: Record<string, unknown>) =>
  ({
    id,
    kind: 'queue',
    labels: {},
    broker: 'amqp',
    url: 'amqp://vigil:Qu3ue-Secret-77@mq.internal:5672/prod',
    canary: true,
    ...fields,
  }) as unknown as ProbeDefinition;

/** A report over probes whose windows hold `runs` runs and `failures` failures each. */
const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures });

const queueItem = (r: Awaited<ReturnType<typeof buildReport>>) => r.scorecard.items.find((i) => i.id === 'queue-delivery')!;

describe('report: the queue delivery checklist item', () => {
  it('takes every queue probe as evidence, named without the password, and passes when each delivered all window', async () => {
    const r = await report(
      [
        queueProbe('mq-tasks', { queue: 'tasks', minConsumers: 2 }),
        queueProbe('redis-jobs', { broker: 'redis', url: 'redis://:pw-Secret-88@cache:6379' }),
      ],
      {},
    );
    expect(r.checklist.queueDelivery).toEqual([
      { probeId: 'mq-tasks', target: 'amqp://mq.internal:5672/prod queue tasks', runs: 1_440, failures: 0, ok: true },
      { probeId: 'redis-jobs', target: 'redis://cache:6379', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(queueItem(r)).toMatchObject({
      status: 'pass',
      evidence: expect.arrayContaining([
        { source: 'probe', detail: 'amqp://mq.internal:5672/prod queue tasks delivered in all 1440 runs', probes: ['mq-tasks'] },
      ]),
    });
    for (const secret of ['Qu3ue-Secret-77', 'pw-Secret-88']) expect(JSON.stringify(r)).not.toContain(secret);
  });

  it('fails when a queue failed runs in the window, saying how often, and shows the section', async () => {
    const r = await report([queueProbe('mq-tasks', { queue: 'tasks' })], { 'mq-tasks': 12 });
    expect(queueItem(r).status).toBe('fail');
    expect(queueItem(r).evidence).toContainEqual({
      source: 'probe',
      detail:
        'amqp://mq.internal:5672/prod queue tasks failed to deliver or had too few consumers or too deep a backlog in 12 of 1440 runs',
      probes: ['mq-tasks'],
    });
    expect(renderReportMarkdown(r)).toContain('### Message queues (a canary round trip, workers consuming)');
  });

  it('is unknown without a queue probe', async () => {
    const r = await report([], {});
    expect(r.checklist.queueDelivery).toEqual([]);
    expect(queueItem(r).status).toBe('unknown');
  });
});
