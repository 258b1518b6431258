import type { Clock, TimerHandle } from '../lib/clock.js';
import { own } from '../lib/own.js';
import type { AlertStore, OncallOverride } from '../store/index.js';
import { type Override, oncallAt, type Person, type Schedule } from './schedule.js';

/** How often the figures /metrics shows are read again (never at scrape time). */
const CACHE_EVERY_MS = 5_000;

/** The overrides of one schedule, oldest first: a later override wins where two overlap. */
export function overridesOf(all: readonly OncallOverride[], schedule: string): Override[] {
  return all
    .filter((o) => o.schedule === schedule)
    .sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
    .map((o) => ({ schedule: o.schedule, person: o.person, start: o.startsAt, end: o.endsAt }));
}

export interface OnCallDeps {
  clock: Clock;
  alerts: Pick<AlertStore, 'overrides'>;
  /** The schedules as configured now (a reload changes them). */
  schedules(): Record<string, Schedule>;
}

/** One schedule's person now, as the status page shows it. */
export interface OnCallNow {
  schedule: string;
  person: string | null;
  name: string | null;
  until: string | null;
}

/**
 * "Who is on call": the schedules' rotations with the overrides in the store applied. The one place
 * that answers it — the escalation's targets, the status page, /metrics. `cached()` is for
 * /metrics: the answer as last read in the background, so a scrape never waits on the database.
 */
export interface OnCall {
  /** Schedule → person on call at `at` (default now), from the overrides as stored now. */
  at(at?: number): Promise<Record<string, string | undefined>>;
  /** A resolver for one moment's escalation: the overrides read once, each schedule answered from them. */
  resolver(at: number): Promise<(schedule: string, when: number) => string | undefined>;
  /** Each schedule's person now with the name and the end of their shift. */
  shifts(at: number, people: Record<string, Person>): Promise<OnCallNow[]>;
  /** Schedule → person, as last read in the background. */
  cached(): Record<string, string | undefined>;
  start(): void;
  stop(): void;
}

export function createOnCall(deps: OnCallDeps): OnCall {
  const { clock } = deps;
  let last: Record<string, string | undefined> = {};
  let timer: TimerHandle | undefined;

  // Overrides that have not ended by `at` (the one just ending counts: `at - 1`).
  const read = (at: number) => deps.alerts.overrides(at - 1);

  async function resolver(at: number) {
    const all = await read(at);
    return (schedule: string, when: number) => {
      const s = own(deps.schedules(), schedule);
      return s ? oncallAt(s, overridesOf(all, schedule), when)?.person : undefined;
    };
  }

  async function at(when = clock.now()) {
    const who = await resolver(when);
    return Object.fromEntries(Object.keys(deps.schedules()).map((id) => [id, who(id, when)]));
  }

  return {
    at,
    resolver,
    async shifts(when, people) {
      const all = await read(when);
      return Object.entries(deps.schedules()).map(([schedule, s]) => {
        const on = oncallAt(s, overridesOf(all, schedule), when);
        return {
          schedule,
          person: on?.person ?? null,
          name: on === undefined ? null : (own(people, on.person)?.name ?? on.person),
          until: on === undefined || !Number.isFinite(on.until) ? null : new Date(on.until).toISOString(),
        };
      });
    },
    cached: () => last,
    start() {
      const loop = () => {
        at()
          .then((now) => {
            last = now;
          })
          // The last answer stays: /health and the store's own figures say why the database is not answering.
          .catch(() => undefined)
          .finally(() => {
            if (timer !== undefined) timer = clock.setTimeout(loop, CACHE_EVERY_MS);
          });
      };
      timer = clock.setTimeout(loop, 0);
    },
    stop() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
