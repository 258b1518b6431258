import type { Clock, TimerHandle } from '../lib/clock.js';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import { stableHash } from '../lib/hash.js';
import type { Logger } from '../lib/logger.js';
import type { PushInbox } from '../lib/push-inbox.js';
import type { Redactor } from '../lib/redactor.js';
import type { Metrics } from '../metrics/index.js';
import { type AnyProber, type ProbeDefinition, type ProbeState, proberFor } from '../probers/index.js';
import type { RunRecord, Trigger } from '../store/index.js';
import { runProbe, Shutdown } from './runner.js';
import { type CronDriver, everyTicks, type TickSource } from './ticks.js';

export { type ChannelTests, createChannelTests } from './channel-tests.js';
export { runProbe, Shutdown } from './runner.js';
export { type CronDriver, nodeCronDriver, type TickHandlers, type TickSource } from './ticks.js';

export interface SchedulerOptions {
  clock: Clock;
  logger: Logger;
  cron: CronDriver;
  probesDir: string;
  /** vigil's data folder, for kinds that keep files (ProbeContext.dataDir). */
  dataDir?: string;
  /** Spread probes that share a schedule over (at most) this much of its interval; 0 = all at the slot. */
  maxSpreadMs: number;
  maxConcurrent: number;
  /** Per-kind limits over the probers' own (`concurrency`). */
  kindConcurrency?: Record<string, number>;
  metrics: Pick<Metrics, 'schedulerLag' | 'missed' | 'skipped'>;
  /** Per-probe state persisted across runs. */
  stateFor(probeId: string): ProbeState;
  /** Every finished run goes here: the composition root stores, measures and alerts. */
  onResult(run: RunRecord): void;
  /** Probers by kind; the registry unless given. */
  proberFor?(kind: ProbeDefinition['kind']): AnyProber;
  /** The probe's secrets, to redact its results with as they are made; none unless given. */
  redactorFor?(def: ProbeDefinition): Redactor;
  /** Pings received for push probes: every run's context gets it. */
  push?: PushInbox;
}

/** What `/health` asks of the scheduler. */
export interface SchedulerHealth {
  running: boolean;
  /** Epoch ms of the scheduler's last heartbeat; stale when the event loop or the scheduler stalls. */
  lastBeat: number;
  inFlight: number;
}

export interface Scheduler {
  /** Schedules these probes, replacing any previous set in one step (reload). */
  setProbes(probes: readonly ProbeDefinition[]): void;
  /** Runs a probe now, outside its schedule; rejects with NOT_FOUND or CONFLICT (already running). */
  runNow(id: string): Promise<RunRecord>;
  isRunning(id: string): boolean;
  health(): SchedulerHealth;
  /** Stops scheduling, waits up to `graceMs` for runs in flight, then aborts the rest and waits for them to end. */
  stop(graceMs: number): Promise<void>;
}

const HEARTBEAT_MS = 5_000;

/** A probe in its schedule's group: `spread` in [0, 1) places it within the slot's window. */
interface Member {
  id: string;
  spread: number;
}

/**
 * One tick source per distinct schedule, not one per probe: a slot dispatches each of its probes on a
 * timer at a stable offset from its id, so a thousand minute probes do not all fire at second 0.
 */
export function createScheduler(opts: SchedulerOptions): Scheduler {
  const { clock } = opts;
  const log = opts.logger.child({ module: 'scheduler' });
  const lookupProber = opts.proberFor ?? proberFor;
  const shutdown = new Shutdown();

  let probes = new Map<string, ProbeDefinition>();
  const groups = new Map<string, { source: TickSource; members: Member[] }>();
  const pending = new Set<TimerHandle>();
  const inFlight = new Map<string, Promise<RunRecord>>();
  const perKind = new Map<string, number>();
  let stopped = false;
  let lastBeat = clock.now();

  let beat: TimerHandle;
  const heartbeat = () => {
    lastBeat = clock.now();
    if (!stopped) beat = clock.setTimeout(heartbeat, HEARTBEAT_MS);
  };
  beat = clock.setTimeout(heartbeat, HEARTBEAT_MS);

  const kindLimit = (kind: ProbeDefinition['kind']) =>
    opts.kindConcurrency?.[kind] ?? lookupProber(kind).concurrency ?? Number.POSITIVE_INFINITY;

  function execute(def: ProbeDefinition, trigger: Trigger): Promise<RunRecord> {
    perKind.set(def.kind, (perKind.get(def.kind) ?? 0) + 1);
    const run = runProbe(def, trigger, {
      clock,
      logger: log,
      probesDir: opts.probesDir,
      ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
      state: opts.stateFor(def.id),
      shutdown,
      prober: lookupProber(def.kind),
      ...(opts.redactorFor ? { redactor: opts.redactorFor(def) } : {}),
      ...(opts.push ? { push: opts.push } : {}),
    })
      .then((record) => {
        try {
          opts.onResult(record);
        } catch (err) {
          log.error({ err, probe: def.id }, 'result handler failed');
        }
        return record;
      })
      .finally(() => {
        inFlight.delete(def.id);
        perKind.set(def.kind, (perKind.get(def.kind) ?? 1) - 1);
      });
    inFlight.set(def.id, run);
    return run;
  }

  function fire(id: string, plannedAt: number) {
    const def = probes.get(id);
    if (def === undefined || stopped) return;
    opts.metrics.schedulerLag(Math.max(0, clock.now() - plannedAt) / 1000);
    if (inFlight.has(id)) {
      opts.metrics.skipped('overlap');
      log.warn({ probe: id }, 'slot skipped: previous run still going');
      return;
    }
    if (inFlight.size >= opts.maxConcurrent) {
      opts.metrics.skipped('capacity');
      log.warn({ probe: id, inFlight: inFlight.size }, 'slot skipped: too many runs in flight');
      return;
    }
    if ((perKind.get(def.kind) ?? 0) >= kindLimit(def.kind)) {
      opts.metrics.skipped('kind_limit');
      log.warn({ probe: id, kind: def.kind }, 'slot skipped: kind at its concurrency limit');
      return;
    }
    void execute(def, 'schedule');
  }

  /**
   * Starts each probe of a slot at `slot + offset(id)`. One timer walks the probes in offset order
   * rather than one timer per probe: at 60,000 probes a minute, arming 60,000 timers at the tick
   * cost a burst of CPU and a second of lag for the probes behind it.
   */
  function dispatch(key: string, members: readonly Member[], slot: number, next: number) {
    const interval = next - slot;
    const window = Math.min(Math.max(0, interval), opts.maxSpreadMs);
    let i = 0;
    let handle: TimerHandle | undefined;
    const step = () => {
      if (handle !== undefined) pending.delete(handle);
      handle = undefined;
      const now = clock.now();
      // The wall clock jumped while this slot was being dispatched: a whole interval past the next
      // slot, or back to more than an interval before this one. The tick source dispatches the slot
      // that holds `now` (and counts the ones between); the rest of this one is dropped rather than
      // run hours late (or far early) beside it. Being merely past `next` is no jump: the last
      // members of a one-second slot sit a millisecond before it, and a timer a few ms late once
      // dropped them (~1 run a second at 2,000 probes on `every: 1s`).
      if (i < members.length && (now - next >= interval || slot - now > interval)) {
        log.warn({ slot: new Date(slot).toISOString(), dropped: members.length - i }, 'slot abandoned: the clock jumped');
        return;
      }
      for (; i < members.length; i++) {
        const member = members[i];
        if (member === undefined) break;
        const at = slot + Math.floor(member.spread * window);
        if (at > now) {
          handle = clock.setTimeout(step, at - now);
          pending.add(handle);
          return;
        }
        // Late by a whole interval: its next slot is due as well, and that run stands for both.
        if (now - at >= interval) {
          opts.metrics.missed(key);
          continue;
        }
        fire(member.id, at);
      }
    };
    step();
  }

  function keyOf(def: ProbeDefinition): string {
    return typeof def.schedule === 'string' ? def.schedule.trim().replace(/\s+/g, ' ') : `every ${ms(def.schedule.every)}`;
  }

  return {
    setProbes(list) {
      if (stopped) return;
      probes = new Map(list.map((p) => [p.id, p]));
      const wanted = new Map<string, Member[]>();
      // Thousands of probes share a few schedules: each text is normalised once.
      const keys = new Map<string, string>();
      for (const def of list) {
        let key = typeof def.schedule === 'string' ? keys.get(def.schedule) : undefined;
        if (key === undefined) {
          key = keyOf(def);
          if (typeof def.schedule === 'string') keys.set(def.schedule, key);
        }
        const members = wanted.get(key) ?? [];
        members.push({ id: def.id, spread: opts.maxSpreadMs > 0 ? stableHash(def.id) / 0x1_0000_0000 : 0 });
        wanted.set(key, members);
      }
      for (const members of wanted.values()) members.sort((a, b) => a.spread - b.spread);
      for (const [key, group] of groups) {
        if (!wanted.has(key)) {
          group.source.stop();
          groups.delete(key);
        }
      }
      for (const [key, members] of wanted) {
        const existing = groups.get(key);
        if (existing) {
          existing.members = members;
          continue;
        }
        // The handlers read the members through this object, so a later setProbes changes whom the ticks run.
        const group = { members };
        const handlers = {
          onTick: (slot: number, next: number) => dispatch(key, group.members, slot, next),
          onMissed: (count: number) => {
            for (let i = 0; i < count; i++) opts.metrics.missed(key);
            log.warn({ schedule: key, missed: count }, 'schedule slots missed');
          },
        };
        const source = key.startsWith('every ') ? everyTicks(clock, Number(key.slice(6)), handlers) : opts.cron(key, handlers);
        groups.set(key, Object.assign(group, { source }));
      }
      log.info({ probes: list.length, schedules: groups.size }, 'probes scheduled');
    },
    runNow(id) {
      const def = probes.get(id);
      if (def === undefined) return Promise.reject(new VigilError('VIGIL_ERR_NOT_FOUND', `no probe with id "${id}"`));
      if (stopped) return Promise.reject(new VigilError('VIGIL_ERR_UNAVAILABLE', 'vigil is shutting down'));
      if (inFlight.has(id))
        return Promise.reject(new VigilError('VIGIL_ERR_CONFLICT', `probe "${id}" is running now; try again when it ends`));
      return execute(def, 'manual');
    },
    isRunning: (id) => inFlight.has(id),
    health: () => ({ running: !stopped, lastBeat, inFlight: inFlight.size }),
    async stop(graceMs) {
      if (stopped) return;
      stopped = true;
      clock.clearTimeout(beat);
      for (const g of groups.values()) g.source.stop();
      groups.clear();
      for (const h of pending) clock.clearTimeout(h);
      pending.clear();
      const all = () => Promise.allSettled([...inFlight.values()]);
      if (inFlight.size > 0) {
        log.info({ inFlight: inFlight.size, graceMs }, 'waiting for runs in flight');
        let timer: TimerHandle | undefined;
        const timedOut = new Promise<'timeout'>((r) => {
          timer = clock.setTimeout(() => r('timeout'), graceMs);
        });
        const outcome = await Promise.race([all().then(() => 'done' as const), timedOut]);
        if (timer !== undefined) clock.clearTimeout(timer);
        if (outcome === 'timeout') {
          log.warn({ inFlight: inFlight.size }, 'aborting runs still in flight');
          shutdown.abort();
          await all();
        }
      }
    },
  };
}
