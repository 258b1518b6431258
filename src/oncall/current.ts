import type { Clock } from '../lib/clock.js';
import { own } from '../lib/own.js';
import type { AlertStore, OncallOverride } from '../store/index.js';
import { type OnCall, type Override, oncallAt, type Schedule, type Shift, shifts } from './schedule.js';

/** What "who is on call" reads: the schedules as configured now and the overrides in the store. */
export interface OnCallDeps {
  clock: Clock;
  alerts: Pick<AlertStore, 'overrides'>;
  /** Read on every call: a reload changes the schedules at once. */
  schedules(): Record<string, Schedule>;
}

/** One schedule at one instant. */
export interface RosterEntry {
  schedule: string;
  definition: Schedule;
  /** Who is on call, since when, until when and why; undefined when nobody is. */
  current: OnCall | undefined;
  /** This schedule's overrides that had not ended, as the schedule functions take them (see overridesOf). */
  overrides: Override[];
}

/** Every schedule at one instant, from one read of the overrides. */
export interface Roster {
  /** The overrides that had not ended, as stored (ids, authors), for the API to list. */
  overrides: OncallOverride[];
  schedules: RosterEntry[];
}

/** "Who is on call", written once: the metrics, escalation, the status page and the API all ask here. */
export interface CurrentOnCall {
  /** Schedule → the person on call now (undefined: nobody). */
  now(): Promise<Record<string, string | undefined>>;
  /** Who is on call on `schedule` at `when` (epoch ms); undefined for nobody or a schedule not configured. */
  at(schedule: string, when: number): Promise<OnCall | undefined>;
  /** Every schedule at `when`. */
  roster(when: number): Promise<Roster>;
  /**
   * For one escalation step: the overrides read once at `when`, then any schedule answered from them
   * synchronously (the escalation's target resolution is synchronous).
   */
  resolver(when: number): Promise<(schedule: string, at: number) => string | undefined>;
  /** The timeline of `schedule` over [from, to), overrides applied; undefined for a schedule not configured. */
  shifts(schedule: string, from: number, to: number): Promise<Shift[] | undefined>;
}

/** Overrides of one schedule, oldest first (a later one wins where they overlap), as the schedule functions take them. */
export function overridesOf(all: readonly OncallOverride[], schedule: string): Override[] {
  return all
    .filter((o) => o.schedule === schedule)
    .sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
    .map((o) => ({ schedule: o.schedule, person: o.person, start: o.startsAt, end: o.endsAt }));
}

/** Answers from the configured schedules and the stored overrides; keeps nothing between calls. */
export function createOnCall(deps: OnCallDeps): CurrentOnCall {
  const overridesAt = (when: number) => deps.alerts.overrides(when - 1);

  const roster = async (when: number): Promise<Roster> => {
    const all = await overridesAt(when);
    return {
      overrides: all,
      schedules: Object.entries(deps.schedules()).map(([schedule, definition]) => {
        const overrides = overridesOf(all, schedule);
        return { schedule, definition, current: oncallAt(definition, overrides, when), overrides };
      }),
    };
  };

  return {
    async now() {
      const r = await roster(deps.clock.now());
      return Object.fromEntries(r.schedules.map((s) => [s.schedule, s.current?.person]));
    },
    async at(schedule, when) {
      const definition = own(deps.schedules(), schedule);
      if (definition === undefined) return undefined;
      return oncallAt(definition, overridesOf(await overridesAt(when), schedule), when);
    },
    roster,
    async resolver(when) {
      const all = await overridesAt(when);
      return (schedule, at) => {
        const definition = own(deps.schedules(), schedule);
        return definition === undefined ? undefined : oncallAt(definition, overridesOf(all, schedule), at)?.person;
      };
    },
    async shifts(schedule, from, to) {
      const definition = own(deps.schedules(), schedule);
      if (definition === undefined) return undefined;
      return shifts(definition, overridesOf(await deps.alerts.overrides(from), schedule), from, to);
    },
  };
}
