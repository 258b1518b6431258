import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { createAlerting } from '../../src/alerting/index.js';
import { AlertSchema } from '../../src/config/schema.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function def(id: string, alert: Record<string, unknown> | undefined, labels: Record<string, string> = {}): ProbeDefinition {
  return {
    id,
    kind: 'http',
    schedule: { every: '1m' },
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels,
    ...(alert ? { alert: Value.Default(AlertSchema, structuredClone(alert)) } : {}),
  } as unknown as ProbeDefinition;
}

function setup(
  probes: ProbeDefinition[],
  opts: {
    file?: string;
    clock?: ManualClock;
    maintenance?: Parameters<typeof createAlerting>[0]['maintenance'];
    resendEvery?: (channel: string) => number | undefined;
  } = {},
) {
  const clock = opts.clock ?? new ManualClock();
  const store = createSqliteStore({ path: opts.file ?? ':memory:', clock, logger: memoryLogger().logger });
  let wakes = 0;
  const muted: string[] = [];
  const alerting = createAlerting({
    store: store.alerts,
    clock,
    logger: memoryLogger().logger,
    probes: () => probes,
    flapping: { start: 0.5, stop: 0.25 },
    maintenance: opts.maintenance ?? [],
    sweepIntervalMs: 5_000,
    onQueued: () => {
      wakes++;
    },
    onMuted: (c) => muted.push(c),
    ...(opts.resendEvery ? { resendEvery: opts.resendEvery } : {}),
  });
  const result = async (probeId: string, ok: boolean, over: Partial<RunRecord> = {}) => {
    const run: RunRecord = {
      probeId,
      kind: 'http',
      startedAt: clock.now(),
      durationMs: 50,
      ok,
      values: {},
      attempts: 1,
      trigger: 'schedule',
      ...(ok ? {} : { code: 'HTTP_STATUS', message: '503 Service Unavailable: cache down (expected 200)' }),
      ...over,
    };
    store.append(run);
    alerting.observe(run);
    await alerting.idle();
    clock.advanceSync(60_000);
  };
  const pending = () => store.alerts.due(Number.MAX_SAFE_INTEGER, 1000);
  return { clock, store, alerting, result, pending, wakes: () => wakes, muted };
}

/** Another alerting over the same store (a new leader, a restart): no channels woken, nothing muted recorded. */
function alertingOn(t: ReturnType<typeof setup>, probes: () => ProbeDefinition[]) {
  return createAlerting({
    store: t.store.alerts,
    clock: t.clock,
    logger: memoryLogger().logger,
    probes,
    flapping: { start: 0.5, stop: 0.25 },
    maintenance: [],
    sweepIntervalMs: 5_000,
    onQueued: () => {},
  });
}

describe('alerting engine', () => {
  it('opens one incident after N failures, pages its channels in the same transaction, resolves after M successes', async () => {
    const t = setup([
      def(
        'api',
        { failures: 2, recoveries: 2, channels: ['slack-ops', 'pager'], severity: 'critical', runbook: 'https://wiki.example.com/rb/api' },
        { team: 'core' },
      ),
    ]);
    await t.result('api', false);
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(0);
    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    expect(incident).toMatchObject({
      probeId: 'api',
      rule: 'failures',
      state: 'open',
      severity: 'critical',
      notified: true,
      channels: ['slack-ops', 'pager'],
      labels: { team: 'core' },
      summary: 'api: HTTP_STATUS: 503 Service Unavailable: cache down (expected 200) (2 runs in a row)',
      lastError: { code: 'HTTP_STATUS' },
    });
    const pages = await t.pending();
    expect(pages.map((p) => [p.channel, p.action, p.dedupKey])).toEqual([
      ['slack-ops', 'trigger', `api/failures/${incident!.id}`],
      ['pager', 'trigger', `api/failures/${incident!.id}`],
    ]);
    // The page carries the alert's runbook, so every channel can link it.
    expect(pages[0]?.payload).toMatchObject({
      id: incident!.id,
      key: `api/failures/${incident!.id}`,
      state: 'open',
      runbook: 'https://wiki.example.com/rb/api',
    });
    expect(t.wakes()).toBeGreaterThan(0);
    // More failures: still one incident, no new pages.
    await t.result('api', false);
    await t.result('api', false);
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(1);
    expect(await t.pending()).toHaveLength(2);
    // One success holds; two resolve, and both channels hear it.
    await t.result('api', true);
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(1);
    await t.result('api', true);
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(0);
    expect(await t.store.alerts.incident(incident!.id)).toMatchObject({ state: 'resolved', resolvedBy: 'vigil' });
    expect((await t.store.alerts.notifications(incident!.id)).map((n) => n.action)).toEqual(['trigger', 'trigger', 'resolve', 'resolve']);
    expect((await t.store.alerts.timeline(incident!.id)).map((e) => e.type)).toEqual(['opened', 'resolved']);
  });

  it('keeps at most one unresolved incident per probe and rule, in the database itself', async () => {
    const t = setup([def('api', { failures: 1, channels: [] })]);
    await t.result('api', false);
    const open = (await t.store.alerts.unresolvedIncidents())[0]!;
    await expect(
      t.store.alerts.applyIncidentChange({
        open: { ...open, openedAt: t.clock.now() },
        event: { at: t.clock.now(), type: 'opened', actor: 'test' },
        notify: [],
      }),
    ).rejects.toThrow(/UNIQUE constraint failed/);
  });

  it('survives a restart: nothing is re-sent, and an outage that ended while it was down resolves on the first good run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-alert-'));
    dirs.push(dir);
    const file = path.join(dir, 'vigil.db');
    const probes = [def('api', { failures: 2, channels: ['slack-ops'] })];
    const first = setup(probes, { file });
    await first.result('api', false);
    await first.result('api', false);
    const [item] = await first.pending();
    await first.store.alerts.markDelivered(item!.id, first.clock.now(), { channel: 'C1', ts: '1.1' });
    const before = (await first.store.alerts.notifications(item!.incidentId!)).length;
    // A restart without a clean close (the store is simply abandoned, as after kill -9 once its batch is written).
    void first.store.flush();
    const second = setup(probes, { file, clock: first.clock });
    return second.alerting
      .seed(
        (probeId, since, limit) => second.store.runs({ probeId, since, limit }),
        (probeId) => second.store.latest(probeId),
      )
      .then(async () => {
        expect(await second.store.alerts.notifications(item!.incidentId!)).toHaveLength(before);
        await second.result('api', true);
        const incident = await second.store.alerts.incident(item!.incidentId!);
        expect(incident?.state).toBe('resolved');
        const sent = await second.store.alerts.notifications(item!.incidentId!);
        expect(sent.map((n) => [n.action, n.state])).toEqual([
          ['trigger', 'delivered'],
          ['resolve', 'pending'],
        ]);
      });
  });

  it('mutes a probe whose dependency is failing, records it, and pages once the dependency recovers', async () => {
    const probes = [def('db', undefined), def('api', { failures: 1, channels: ['slack-ops'], dependsOn: ['db'] })];
    const t = setup(probes);
    await t.result('db', false);
    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    expect(incident).toMatchObject({ notified: false });
    expect(await t.pending()).toHaveLength(0);
    const [n] = await t.store.alerts.notifications(incident!.id);
    expect(n).toMatchObject({ state: 'muted', mutedReason: 'depends on db, which is failing' });
    expect(t.muted).toEqual(['slack-ops']);
    await t.alerting.sweep();
    expect(await t.pending()).toHaveLength(0);
    // The dependency recovers, the dependent is still down: the page goes out now.
    await t.result('db', true);
    await t.alerting.sweep();
    expect((await t.pending()).map((p) => p.action)).toEqual(['trigger']);
    expect((await t.store.alerts.timeline(incident!.id)).map((e) => e.type)).toEqual(['opened', 'notified']);
  });

  it('a new leader reads which dependencies are failing from the store, rules or not', async () => {
    const probes = [
      def('db', undefined),
      def('cache', { failures: 3, channels: ['slack-ops'] }),
      def('queue', undefined),
      def('api', { failures: 1, channels: ['slack-ops'], dependsOn: ['queue', 'db'] }),
      def('web', { failures: 1, channels: ['slack-ops'], dependsOn: ['cache'] }),
      def('jobs', { failures: 1, channels: ['slack-ops'], dependsOn: ['queue'] }),
    ];
    const t = setup(probes);
    await t.result('db', true);
    await t.result('db', false);
    await t.result('cache', false);
    await t.result('queue', false);
    await t.result('queue', true);
    await t.store.flush();
    const next = alertingOn(t, () => probes);
    await next.seed(
      (probeId, since, limit) => t.store.runs({ probeId, since, limit }),
      (probeId) => t.store.latest(probeId),
    );
    for (const probeId of ['api', 'web', 'jobs']) {
      next.observe({
        probeId,
        kind: 'http',
        startedAt: t.clock.now(),
        durationMs: 5,
        ok: false,
        values: {},
        attempts: 1,
        trigger: 'schedule',
      });
    }
    await next.idle();
    const first = async (probe: string) => {
      const incident = (await t.store.alerts.unresolvedIncidents()).find((i) => i.probeId === probe);
      return (await t.store.alerts.notifications(incident!.id))[0];
    };
    expect(await first('api')).toMatchObject({ state: 'muted', mutedReason: 'depends on db, which is failing' });
    expect(await first('web')).toMatchObject({ state: 'muted', mutedReason: 'depends on cache, which is failing' });
    // queue failed, then recovered: its newest run counts.
    expect(await first('jobs')).toMatchObject({ state: 'pending' });
  });

  it('a dependent that recovers while muted resolves without paging anyone', async () => {
    const t = setup([def('db', undefined), def('api', { failures: 1, channels: ['slack-ops'], dependsOn: ['db'] })]);
    await t.result('db', false);
    await t.result('api', false);
    await t.result('api', true);
    const [incident] = await t.store.alerts.incidents({});
    expect(incident?.state).toBe('resolved');
    expect((await t.store.alerts.notifications(incident!.id)).map((n) => n.state)).toEqual(['muted']);
  });

  it('records pages muted by a silence and sends them when the silence ends with the incident open', async () => {
    const t = setup([def('api', { failures: 1, channels: ['slack-ops'] }, { team: 'core' })]);
    const now = t.clock.now();
    await t.store.alerts.addSilence({
      probes: ['ap*'],
      labels: { team: 'core' },
      startsAt: now,
      endsAt: now + 30 * 60_000,
      author: 'ops',
      comment: 'deploy',
      createdAt: now,
    });
    await t.alerting.silencesChanged();
    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    expect((await t.store.alerts.notifications(incident!.id))[0]).toMatchObject({
      state: 'muted',
      mutedReason: expect.stringMatching(/^silenced until .* by ops: deploy$/),
    });
    t.clock.advanceSync(30 * 60_000);
    await t.alerting.sweep();
    expect((await t.pending()).map((p) => p.action)).toEqual(['trigger']);
  });

  it('mutes during a recurring maintenance window from config', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 26, 3, 10));
    const t = setup([def('api', { failures: 1, channels: ['slack-ops'] })], {
      clock,
      maintenance: [{ name: 'nightly', schedule: '0 3 * * *', durationMs: 30 * 60_000, probes: [], labels: {} }],
    });
    await t.alerting.sweep();
    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    expect((await t.store.alerts.notifications(incident!.id))[0]).toMatchObject({
      state: 'muted',
      mutedReason: 'maintenance window nightly',
    });
    clock.advanceSync(25 * 60_000);
    await t.alerting.sweep();
    expect(await t.pending()).toHaveLength(1);
  });

  it('reminds while open and unacknowledged, and stops after an acknowledgement, which is announced', async () => {
    const t = setup([def('api', { failures: 1, channels: ['slack-ops'], repeat: '1h' })]);
    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    t.clock.advanceSync(59 * 60_000);
    await t.alerting.sweep();
    t.clock.advanceSync(2 * 60_000);
    await t.alerting.sweep();
    expect((await t.store.alerts.notifications(incident!.id)).map((n) => n.action)).toEqual(['trigger', 'remind']);
    const acked = await t.alerting.acknowledge(incident!.id, 'ops');
    expect(acked).toMatchObject({ state: 'acknowledged', ackedBy: 'ops' });
    await expect(t.alerting.acknowledge(incident!.id, 'ops')).rejects.toThrow(/already acknowledged by ops/);
    t.clock.advanceSync(2 * 3_600_000);
    await t.alerting.sweep();
    expect((await t.store.alerts.notifications(incident!.id)).map((n) => n.action)).toEqual(['trigger', 'remind', 'acknowledge']);
    expect((await t.alerting.resolve(incident!.id, 'ops')).state).toBe('resolved');
    await expect(t.alerting.resolve(incident!.id, 'ops')).rejects.toThrow(/already resolved/);
    expect((await t.store.alerts.timeline(incident!.id)).map((e) => [e.type, e.actor])).toEqual([
      ['opened', 'vigil'],
      ['reminded', 'vigil'],
      ['acknowledged', 'ops'],
      ['resolved', 'ops'],
    ]);
  });

  it('re-sends an unresolved incident to a channel that forgets alerts, to it alone, through the outbox, until resolved', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-resend-'));
    dirs.push(dir);
    const file = path.join(dir, 'vigil.db');
    const clock = new ManualClock();
    const probes = [def('api', { failures: 1, channels: ['slack-ops', 'am'] })];
    const resendEvery = (channel: string) => (channel === 'am' ? 60_000 : undefined);
    const t = setup(probes, { file, clock, resendEvery });
    const deliverAll = async () => {
      for (const n of await t.pending()) await t.store.alerts.markDelivered(n.id, clock.now());
    };
    const sent = async (id: number) => (await t.store.alerts.notifications(id)).map((n) => `${n.channel}:${n.action}`);

    await t.result('api', false);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    const id = incident!.id;
    await deliverAll();
    clock.advanceSync(59_000);
    await t.alerting.sweep();
    expect(await sent(id)).toEqual(['slack-ops:trigger', 'am:trigger']);
    // An interval after the trigger was delivered.
    clock.advanceSync(1_000);
    await t.alerting.sweep();
    expect(await sent(id)).toEqual(['slack-ops:trigger', 'am:trigger', 'am:remind']);
    // One resend waits for the provider at a time: an outage does not pile them up.
    clock.advanceSync(5 * 60_000);
    await t.alerting.sweep();
    expect(await sent(id)).toEqual(['slack-ops:trigger', 'am:trigger', 'am:remind']);
    await deliverAll();
    // Not due again until an interval after the last one it was sent.
    await t.alerting.sweep();
    clock.advanceSync(30_000);
    await t.alerting.sweep();
    expect(await sent(id)).toHaveLength(3);
    clock.advanceSync(30_000);
    await t.alerting.sweep();
    expect(await sent(id)).toHaveLength(4);
    await deliverAll();

    // Acknowledged: still true, so still re-sent (carrying who acknowledged it).
    await t.alerting.acknowledge(id, 'ops');
    await deliverAll();
    clock.advanceSync(60_000);
    await t.alerting.sweep();
    const [last] = (await t.store.alerts.notifications(id)).slice(-1);
    expect(last).toMatchObject({ channel: 'am', action: 'remind', payload: { state: 'acknowledged', ackedBy: 'ops' } });
    await deliverAll();

    // A restart (a new engine on the same database, its memory empty) re-sends on the outbox's time, not at once.
    t.alerting.stop();
    const again = createAlerting({
      store: t.store.alerts,
      clock,
      logger: memoryLogger().logger,
      probes: () => probes,
      flapping: { start: 0.5, stop: 0.25 },
      maintenance: [],
      sweepIntervalMs: 5_000,
      onQueued: () => {},
      resendEvery,
    });
    await again.seed(
      async () => [],
      () => undefined,
    );
    clock.advanceSync(59_000);
    await again.sweep();
    expect(await sent(id)).toHaveLength(7);
    clock.advanceSync(1_000);
    await again.sweep();
    expect(await sent(id)).toHaveLength(8);
    await deliverAll();

    await again.resolve(id, 'ops');
    clock.advanceSync(10 * 60_000);
    await again.sweep();
    expect(await sent(id)).toEqual([
      'slack-ops:trigger',
      'am:trigger',
      'am:remind',
      'am:remind',
      'slack-ops:acknowledge',
      'am:acknowledge',
      'am:remind',
      'am:remind',
      'slack-ops:resolve',
      'am:resolve',
    ]);
    // Re-sends keep the alert alive; they are not events of the incident and page nobody else.
    expect((await t.store.alerts.timeline(id)).map((e) => e.type)).toEqual(['opened', 'acknowledged', 'resolved']);
  });

  it('marks a flapping incident and holds its reminders back until it settles', async () => {
    const t = setup([def('api', { failures: 1, recoveries: 3, channels: ['slack-ops'], repeat: '1m' })]);
    for (let i = 0; i < 24; i++) await t.result('api', i % 2 === 0 ? false : i % 4 === 1);
    const [incident] = await t.store.alerts.unresolvedIncidents();
    expect(incident?.flapping).toBe(true);
    expect((await t.store.alerts.timeline(incident!.id)).map((e) => e.type)).toContain('flapping');
    const before = (await t.store.alerts.notifications(incident!.id)).length;
    await t.alerting.sweep();
    expect(await t.store.alerts.notifications(incident!.id)).toHaveLength(before);
  });

  it('ignores runs aborted by shutdown and resolves incidents of probes removed from config', async () => {
    let probes = [def('api', { failures: 1, channels: ['slack-ops'] })];
    const t = setup([]);
    const alerting = alertingOn(t, () => probes);
    const run = (ok: boolean, code?: string): RunRecord => ({
      probeId: 'api',
      kind: 'http',
      startedAt: t.clock.now(),
      durationMs: 5,
      ok,
      values: {},
      attempts: 1,
      trigger: 'schedule',
      ...(code ? { code } : {}),
    });
    alerting.observe(run(false, 'ABORTED'));
    await alerting.idle();
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(0);
    alerting.observe(run(false, 'CONNECT'));
    await alerting.idle();
    expect(await t.store.alerts.unresolvedIncidents()).toHaveLength(1);
    probes = [];
    await alerting.sweep();
    expect((await t.store.alerts.incidents({}))[0]).toMatchObject({ state: 'resolved', resolvedBy: 'vigil' });
  });

  it('opens a quorum incident only while enough locations fail on their own runs, and a new leader keeps it', async () => {
    const t = setup([def('api', { failures: 2, recoveries: 2, quorum: 2, channels: ['hook'] })]);
    const round = async (states: Record<string, boolean>) => {
      for (const [location, ok] of Object.entries(states)) await t.result('api', ok, { location });
    };
    // One location of three failing, however long: no incident.
    for (let i = 0; i < 4; i++) await round({ 'eu-west': true, 'us-east': false, 'ap-south': true });
    expect(await t.store.alerts.unresolvedIncidents()).toEqual([]);
    // A second location fails: once its own rule fires (2 in a row), the quorum is met.
    await round({ 'eu-west': false, 'us-east': false, 'ap-south': true });
    expect(await t.store.alerts.unresolvedIncidents()).toEqual([]);
    await round({ 'eu-west': false, 'us-east': false, 'ap-south': true });
    const [open] = await t.store.alerts.unresolvedIncidents();
    expect(open?.summary).toMatch(/^api: failing in 2 locations \(quorum 2\): /);
    expect(open?.summary).toContain('eu-west: ');
    expect((await t.pending()).map((p) => p.action)).toEqual(['trigger']);

    // A new leader on the same database (seeded from the store) neither resolves nor reopens it.
    await t.store.flush();
    const next = alertingOn(t, () => [def('api', { failures: 2, recoveries: 2, quorum: 2, channels: ['hook'] })]);
    await next.seed(
      (probeId, since, limit) => t.store.runs({ probeId, since, limit }),
      (probeId) => t.store.latest(probeId),
    );
    const again = async (location: string, ok: boolean) => {
      next.observe({
        probeId: 'api',
        kind: 'http',
        startedAt: t.clock.now(),
        durationMs: 50,
        ok,
        values: {},
        attempts: 1,
        trigger: 'schedule',
        location,
        ...(ok ? {} : { code: 'HTTP_STATUS', message: '503' }),
      });
      await next.idle();
      t.clock.advanceSync(60_000);
    };
    await again('ap-south', true);
    await again('eu-west', false);
    expect((await t.store.alerts.unresolvedIncidents()).map((i) => i.id)).toEqual([open!.id]);
    // One location recovers (2 good runs): below the quorum, it resolves, once.
    await again('eu-west', true);
    await again('eu-west', true);
    expect(await t.store.alerts.unresolvedIncidents()).toEqual([]);
    expect((await t.store.alerts.incident(open!.id))?.state).toBe('resolved');
    expect((await t.store.alerts.notifications(open!.id)).map((n) => n.action)).toEqual(['trigger', 'resolve']);
  });
});
