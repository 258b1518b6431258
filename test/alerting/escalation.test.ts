import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { advance, createAlerting, type EscalationPolicy, resolveTargets, startEscalation } from '../../src/alerting/index.js';
import { AlertSchema } from '../../src/config/schema.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

const MIN = 60_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const POLICY: EscalationPolicy = {
  steps: [
    { notify: ['slack-ops', 'oncall:primary'], after: '0m' },
    { notify: ['oncall:primary'], via: ['pagerduty', 'email'], after: '5m' },
    { notify: ['oncall:secondary', 'person:dana'], after: '15m' },
  ],
  repeat: 1,
  repeatAfter: '5m',
  fallback: ['email-leads'],
};
const CHANNELS = { 'slack-ops': 'slack', pagerduty: 'pagerduty', email: 'email', 'email-leads': 'email' };
const PEOPLE = {
  alice: { email: 'alice@example.com', slack: 'U1', pagerduty: true },
  bob: { email: 'bob@example.com' },
  dana: { email: 'dana@example.com', slack: 'U4' },
};

function probe(policy = 'default'): ProbeDefinition {
  return {
    id: 'api',
    kind: 'http',
    schedule: { every: '1m' },
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    alert: Value.Default(AlertSchema, { failures: 1, policy }),
  } as unknown as ProbeDefinition;
}

/** An engine on a store file, so a test can "restart" by making a second one on the same file. */
function engine(file: string, clock: ManualClock, onCall: Record<string, string | undefined>, policy: EscalationPolicy = POLICY) {
  const store = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
  const escalated: string[] = [];
  const alerting = createAlerting({
    store: store.alerts,
    clock,
    logger: memoryLogger().logger,
    probes: () => [probe()],
    flapping: { start: 0.5, stop: 0.25 },
    maintenance: [],
    sweepIntervalMs: 5_000,
    onQueued: () => {},
    escalation: {
      policies: () => ({ default: policy }),
      targets: () => ({ channels: CHANNELS, people: PEOPLE, onCall: (s) => onCall[s] }),
    },
    observer: { escalated: (p) => escalated.push(p), acknowledged: () => {}, resolved: () => {} },
  });
  const fail = async () => {
    const run: RunRecord = {
      probeId: 'api',
      kind: 'http',
      startedAt: clock.now(),
      durationMs: 5,
      ok: false,
      code: 'CONNECT',
      message: 'refused',
      values: {},
      attempts: 1,
      trigger: 'schedule',
    };
    store.append(run);
    alerting.observe(run);
    await alerting.idle();
  };
  const pages = async (id: number) =>
    (await store.alerts.notifications(id)).map((n) => `${n.action} ${n.channel}${n.recipient ? `→${n.recipient}` : ''}`);
  return { store, alerting, fail, pages, escalated };
}

function tempFile() {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-esc-'));
  dirs.push(dir);
  return path.join(dir, 'vigil.db');
}

describe('escalation', () => {
  it('resolves targets: channels, people through the channels that can reach them, whoever is on call', async () => {
    const ctx = { channels: CHANNELS, people: PEOPLE, onCall: (s: string) => (s === 'primary' ? 'alice' : undefined) };
    expect(resolveTargets(['slack-ops', 'oncall:primary'], undefined, ctx, 0)).toEqual({
      pages: [
        { channel: 'slack-ops' },
        { channel: 'slack-ops', recipient: 'alice' },
        { channel: 'pagerduty', recipient: 'alice' },
        { channel: 'email', recipient: 'alice' },
      ],
      nobody: [],
    });
    expect(resolveTargets(['oncall:primary'], ['pagerduty', 'email'], ctx, 0).pages).toEqual([
      { channel: 'pagerduty', recipient: 'alice' },
      { channel: 'email', recipient: 'alice' },
    ]);
    // Bob has no PagerDuty: via [pagerduty, email] reaches him by email only.
    expect(resolveTargets(['person:bob'], ['pagerduty', 'email'], ctx, 0).pages).toEqual([{ channel: 'email', recipient: 'bob' }]);
    expect(resolveTargets(['oncall:secondary', 'nope'], undefined, ctx, 0)).toEqual({ pages: [], nobody: ['oncall:secondary', 'nope'] });
  });

  it('steps through a pass and repeats, at 0, 5 and 15 minutes from the open', async () => {
    const s0 = startEscalation(POLICY, 0);
    expect(s0).toEqual({ pass: 0, step: 0, nextDueAt: 0, reached: false });
    const s1 = advance(POLICY, s0, 0, true);
    expect(s1.state).toMatchObject({ pass: 0, step: 1, nextDueAt: 5 * MIN });
    const s2 = advance(POLICY, s1.state, 0, false);
    expect(s2.state).toMatchObject({ step: 2, nextDueAt: 15 * MIN });
    // End of pass 1 (15 + 5 min): pass 2 starts at 20 min.
    const s3 = advance(POLICY, s2.state, 0, false);
    expect(s3).toEqual({ state: { pass: 1, step: 0, nextDueAt: 20 * MIN, reached: false }, fallback: false });
  });

  it('runs end to end with an injected clock: 0 → 5 → 15 min, nobody on call recorded, repeat, then stops at an ack', async () => {
    const clock = new ManualClock();
    const e = engine(tempFile(), clock, { primary: 'alice', secondary: undefined });
    await e.fail();
    const [incident] = await e.store.alerts.unresolvedIncidents();
    const id = incident!.id;
    expect(await e.pages(id)).toEqual(['trigger slack-ops', 'trigger slack-ops→alice', 'trigger pagerduty→alice', 'trigger email→alice']);
    clock.advanceSync(4 * MIN);
    await e.alerting.sweep();
    expect(await e.pages(id)).toHaveLength(4);
    clock.advanceSync(1 * MIN);
    await e.alerting.sweep();
    expect((await e.pages(id)).slice(4)).toEqual(['trigger pagerduty→alice', 'trigger email→alice']);
    clock.advanceSync(10 * MIN);
    await e.alerting.sweep();
    // Nobody is on call for secondary: recorded, and dana is paged.
    expect((await e.pages(id)).slice(6)).toEqual(['trigger slack-ops→dana', 'trigger email→dana']);
    const events = (await e.store.alerts.timeline(id)).filter((x) => x.type === 'escalated');
    expect(events.map((x) => x.detail)).toEqual([
      'step 1 of 3; paged slack-ops, alice via slack-ops, alice via pagerduty, alice via email',
      'step 2 of 3; paged alice via pagerduty, alice via email',
      'step 3 of 3; paged dana via slack-ops, dana via email; nobody for oncall:secondary',
    ]);
    // The second pass starts at 20 min.
    clock.advanceSync(5 * MIN);
    await e.alerting.sweep();
    expect((await e.store.alerts.timeline(id)).filter((x) => x.type === 'escalated').at(-1)?.detail).toMatch(/^step 1 of 3 \(pass 2\)/);
    // An acknowledgement stops it and is announced to everyone paged.
    await e.alerting.acknowledge(id, 'alice');
    const before = (await e.pages(id)).length;
    clock.advanceSync(60 * MIN);
    await e.alerting.sweep();
    const after = (await e.pages(id)).slice(before);
    expect(after).toEqual([]);
    expect(
      (await e.store.alerts.notifications(id))
        .filter((n) => n.action === 'acknowledge')
        .map((n) => `${n.channel}${n.recipient ? `→${n.recipient}` : ''}`),
    ).toEqual(['slack-ops', 'slack-ops→alice', 'pagerduty→alice', 'email→alice', 'slack-ops→dana', 'email→dana']);
    expect(e.escalated.length).toBe(4);
  });

  it('pages the fallback when a whole pass reached nobody, and stops at a resolve, telling everyone paged', async () => {
    const clock = new ManualClock();
    const lonely: EscalationPolicy = {
      steps: [
        { notify: ['oncall:primary'], after: '0m' },
        { notify: ['oncall:secondary'], after: '5m' },
      ],
      repeat: 0,
      repeatAfter: '5m',
      fallback: ['email-leads'],
    };
    const e = engine(tempFile(), clock, { primary: undefined, secondary: undefined }, lonely);
    await e.fail();
    const id = (await e.store.alerts.unresolvedIncidents())[0]!.id;
    expect(await e.pages(id)).toEqual([]);
    clock.advanceSync(5 * MIN);
    await e.alerting.sweep();
    expect(await e.pages(id)).toEqual(['trigger email-leads']);
    expect((await e.store.alerts.timeline(id)).at(-1)?.detail).toBe(
      'step 2 of 2; reached nobody; nobody for oncall:secondary; the whole pass reached nobody: paged fallback email-leads',
    );
    await e.alerting.resolve(id, 'ops');
    expect(await e.pages(id)).toEqual(['trigger email-leads', 'resolve email-leads']);
    clock.advanceSync(60 * MIN);
    await e.alerting.sweep();
    expect(await e.pages(id)).toHaveLength(2);
  });

  it('resumes after a restart in the middle: the next step at its time, nothing sent twice', async () => {
    const clock = new ManualClock();
    const file = tempFile();
    const first = engine(file, clock, { primary: 'alice' });
    await first.fail();
    const id = (await first.store.alerts.unresolvedIncidents())[0]!.id;
    clock.advanceSync(5 * MIN);
    await first.alerting.sweep();
    const sent = await first.pages(id);
    expect(sent).toHaveLength(6);
    await first.store.flush();
    // Restart (vigil down for 3 minutes): the new engine reads the escalation state from the store.
    clock.advanceSync(3 * MIN);
    const second = engine(file, clock, { primary: 'alice' });
    await second.alerting.seed(
      (probeId, since, limit) => second.store.runs({ probeId, since, limit }),
      (probeId) => second.store.latest(probeId),
    );
    expect(await second.pages(id)).toEqual(sent);
    clock.advanceSync(6 * MIN);
    await second.alerting.sweep();
    expect(await second.pages(id)).toEqual(sent);
    clock.advanceSync(1 * MIN);
    await second.alerting.sweep();
    expect((await second.pages(id)).slice(6)).toEqual(['trigger slack-ops→dana', 'trigger email→dana']);
    expect((await second.store.alerts.escalation(id))?.state).toMatchObject({ pass: 1, step: 0, nextDueAt: clock.now() + 5 * MIN });
  });
});
