import { describe, expect, it } from 'vitest';
import { createPushInbox, type PushInbox } from '../../src/lib/push-inbox.js';
import { createRedactor } from '../../src/lib/redactor.js';
import type { ProbeContext, ProbeResult } from '../../src/probers/index.js';
import { graceMs, type PushSpec, push } from '../../src/probers/push.js';
import type { ProbeBase } from '../../src/probers/types.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger, memoryState } from '../helpers/context.js';

type Def = ProbeBase & PushSpec;

const MIN = 60_000;

function def(overrides: Partial<Def> = {}): Def {
  return {
    id: 'nightly-backup',
    kind: 'push',
    schedule: { every: '1m' },
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    locations: [],
    token: 'tok-0123456789abcdef',
    period: '1h',
    grace: '5m',
    ...overrides,
  };
}

/** A push probe's world: a manual clock, an inbox, and state carried from run to run as the scheduler does. */
function world(spec = def(), extra: Partial<ProbeContext> = {}) {
  const clock = new ManualClock();
  const inbox: PushInbox = createPushInbox();
  const state = memoryState();
  const run = (): Promise<ProbeResult> =>
    push.probe(spec, {
      signal: new AbortController().signal,
      deadline: clock.now() + 10_000,
      clock,
      logger: memoryLogger().logger,
      probesDir: '.',
      state,
      push: inbox,
      ...extra,
    });
  const ping = (kind: 'start' | 'success' | 'fail', more: { exitCode?: number; body?: string } = {}) =>
    inbox.record(spec.id, { kind, at: clock.now(), ...more });
  return { clock, inbox, state, run, ping };
}

describe('push prober', () => {
  it('does not page before one period + grace has passed since it was first declared', async () => {
    const w = world();
    expect(await w.run()).toMatchObject({ ok: true, values: { since_success_s: 0, pings: 0 } });
    await w.clock.advance(65 * MIN);
    expect(await w.run()).toMatchObject({ ok: true, values: { since_success_s: 3900 } });
    await w.clock.advance(1_000);
    const r = await w.run();
    expect(r).toMatchObject({ ok: false, code: 'PUSH_MISSING' });
    expect(r.message).toBe('no success ping in the 1h5m since vigil began watching (expected every 1h + 5m grace)');
  });

  it('passes while successes come within period + grace, and fails once one is late', async () => {
    const w = world();
    await w.clock.advance(10 * MIN);
    w.ping('success');
    expect(await w.run()).toMatchObject({ ok: true, values: { since_success_s: 0, pings: 1 } });
    await w.clock.advance(65 * MIN);
    expect(await w.run()).toMatchObject({ ok: true });
    await w.clock.advance(MIN);
    const late = await w.run();
    expect(late).toMatchObject({ ok: false, code: 'PUSH_MISSING', values: { since_success_s: 66 * 60, pings: 0 } });
    expect(late.message).toBe('no success ping for 1h6m, last at 2026-11-26T12:10:00.000Z (expected every 1h + 5m grace)');
    expect(late.details).toMatchObject({ lastSuccessAt: '2026-11-26T12:10:00.000Z' });
    // The next success clears it at once.
    w.ping('success');
    expect(await w.run()).toMatchObject({ ok: true, values: { since_success_s: 0 } });
  });

  it('fails with PUSH_FAILED on a fail ping, and stays failed until the next success', async () => {
    const w = world();
    w.ping('fail', { body: 'pg_dump: connection refused' });
    const failed = await w.run();
    expect(failed).toMatchObject({ ok: false, code: 'PUSH_FAILED' });
    expect(failed.message).toBe(
      'the job reported a failure at 2026-11-26T12:00:00.000Z; it stays failed until the next success ping: pg_dump: connection refused',
    );
    await w.clock.advance(MIN);
    expect(await w.run()).toMatchObject({ ok: false, code: 'PUSH_FAILED', values: { pings: 0 } });
    w.ping('success');
    expect(await w.run()).toMatchObject({ ok: true });
  });

  it('reads an exit code: non-zero fails naming it, 0 is a success', async () => {
    const w = world();
    w.ping('fail', { exitCode: 3 });
    const r = await w.run();
    expect(r).toMatchObject({ ok: false, code: 'PUSH_FAILED', details: { pings: [{ kind: 'fail', exitCode: 3 }] } });
    expect(r.message).toMatch(/^the job reported a failure with exit code 3 at /);
  });

  it('measures start → success as duration_s, and says when a started job never finished', async () => {
    const w = world(def({ period: '10m', grace: '1m' }));
    w.ping('start');
    expect(await w.run()).toMatchObject({ ok: true, details: { startedAt: '2026-11-26T12:00:00.000Z' } });
    await w.clock.advance(90_000);
    w.ping('success', { body: 'backed up 42 GB' });
    const done = await w.run();
    expect(done).toMatchObject({ ok: true, values: { duration_s: 90, pings: 1 }, details: { body: 'backed up 42 GB' } });
    // The next run has no new pair: no duration repeated.
    expect((await w.run()).values.duration_s).toBeUndefined();
    // A start with no end, past the deadline: the failure says the job is still running (or died).
    w.ping('start');
    await w.clock.advance(12 * MIN);
    const hung = await w.run();
    expect(hung).toMatchObject({ ok: false, code: 'PUSH_MISSING' });
    expect(hung.message).toMatch(/; it started at 2026-11-26T12:01:30\.000Z and has not finished$/);
  });

  it('takes several pings in one run, oldest first', async () => {
    const w = world();
    w.ping('start');
    await w.clock.advance(5_000);
    w.ping('fail', { exitCode: 1 });
    await w.clock.advance(5_000);
    w.ping('start');
    await w.clock.advance(2_000);
    w.ping('success');
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, values: { pings: 4, duration_s: 2 } });
    expect(w.inbox.take('nightly-backup')).toEqual([]);
  });

  it('keeps its state across runs (a restart resumes from the stored state, not from zero)', async () => {
    const w = world();
    w.ping('success');
    await w.run();
    const stored = w.state.get<Record<string, unknown>>();
    expect(stored).toEqual({ since: w.clock.now(), lastSuccessAt: w.clock.now() });
    // A new process: new inbox, same stored state, an hour and ten minutes later.
    const later = world();
    await later.clock.advance(70 * MIN);
    later.state.set(stored);
    expect(await later.run()).toMatchObject({ ok: false, code: 'PUSH_MISSING' });
  });

  it("cuts a body to 1 kB and redacts it with the probe's redactor", async () => {
    const w = world(def(), { redactor: createRedactor(['s3cr3t-db-password']) });
    w.ping('fail', { body: `error: auth failed for s3cr3t-db-password ${'x'.repeat(5_000)}` });
    const r = await w.run();
    expect(r.message).not.toContain('s3cr3t-db-password');
    expect(r.message).toContain('<secret>');
    expect(String((r.details as { body: string }).body).length).toBeLessThanOrEqual(1024);
  });

  it('fails, saying why, when run without an inbox', async () => {
    const w = world(def(), { push: undefined });
    const r = await push.probe(def(), {
      signal: new AbortController().signal,
      deadline: w.clock.now() + 1_000,
      clock: w.clock,
      logger: memoryLogger().logger,
      probesDir: '.',
      state: memoryState(),
    });
    expect(r).toMatchObject({ ok: false, code: 'INTERNAL' });
  });

  it('defaults grace to a tenth of the period, at least a minute', () => {
    expect(graceMs(def({ grace: undefined, period: '1d' }))).toBe(144 * MIN);
    expect(graceMs(def({ grace: undefined, period: '5m' }))).toBe(MIN);
    expect(graceMs(def({ grace: '0s' }))).toBe(0);
  });

  it('never shows the token as its target', () => {
    expect(push.report.target(def())).toBe('a job pinging every 1h');
  });
});
