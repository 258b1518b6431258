import cron from 'node-cron';
import type { Silence } from '../store/index.js';

/** What silences and maintenance windows match on. */
export interface Target {
  id: string;
  labels: Record<string, string>;
}

/** `api-*` matches `api-health`; only `*` is special. */
export function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return re.test(text);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Empty `probes` matches every probe; every given label must be equal. */
export function matches(m: { probes: readonly string[]; labels: Record<string, string> }, t: Target): boolean {
  if (m.probes.length > 0 && !m.probes.some((p) => globMatch(p, t.id))) return false;
  return Object.entries(m.labels).every(([k, v]) => t.labels[k] === v);
}

/** The silence muting this target at `now`, if any. */
export function activeSilence(silences: readonly Silence[], t: Target, now: number): Silence | undefined {
  return silences.find((s) => s.startsAt <= now && now < s.endsAt && matches(s, t));
}

/** A recurring maintenance window from config. */
export interface MaintenanceWindow {
  name: string;
  schedule: string;
  durationMs: number;
  probes: readonly string[];
  labels: Record<string, string>;
}

/**
 * Whether a window is open at `now`: its cron fired within the last `durationMs`. node-cron has no
 * "previous fire", so the slots are walked back at the expression's resolution (a minute, or a
 * second for 6-field expressions); done once per sweep, not per run.
 */
export function windowOpen(w: MaintenanceWindow, now: number): boolean {
  return windowStart(w, now) !== undefined;
}

/** When the window open at `now` began (its newest slot within `durationMs`), or undefined when it is closed. */
function windowStart(w: MaintenanceWindow, now: number): number | undefined {
  const task = cron.createTask(w.schedule, () => {});
  try {
    const step = w.schedule.trim().split(/\s+/).length === 6 ? 1000 : 60_000;
    const start = Math.floor(now / step) * step;
    for (let t = start; t > now - w.durationMs; t -= step) if (task.match(new Date(t))) return t;
    return undefined;
  } finally {
    void task.destroy();
  }
}

/** Where a maintenance window stands at `now`: in force or not, and its current or next opening. */
export interface WindowTimes {
  active: boolean;
  /** The opening in force now, or the next one (epoch ms); undefined when the schedule never fires again. */
  startsAt: number | undefined;
  endsAt: number | undefined;
  /** The opening after the one in force (or the one after next when closed). */
  nextStartsAt: number | undefined;
}

/**
 * The next slot of a cron expression after `after`, from `after` rather than the wall clock (what
 * node-cron's own getNextRun reads), so an injected clock decides. Walking minute by minute costs
 * ~27 µs a step (a week is 0.3 s): node-cron 4's matcher jumps field by field instead. It is not in
 * the typings, hence the guarded reach-in; node-cron is pinned and a test holds the result.
 */
function nextSlot(schedule: string, after: number): number | undefined {
  const task = cron.createTask(schedule, () => {});
  try {
    const matcher: unknown = Reflect.get(task, 'timeMatcher');
    const match: unknown =
      typeof matcher === 'object' && matcher !== null && 'getNextMatch' in matcher && typeof matcher.getNextMatch === 'function'
        ? matcher.getNextMatch(new Date(after))
        : undefined;
    const next = match instanceof Date ? match.getTime() : undefined;
    return next !== undefined && Number.isFinite(next) && next > after ? next : undefined;
  } finally {
    void task.destroy();
  }
}

export function windowTimes(w: MaintenanceWindow, now: number): WindowTimes {
  const current = windowStart(w, now);
  const next = nextSlot(w.schedule, current ?? now);
  if (current !== undefined) return { active: true, startsAt: current, endsAt: current + w.durationMs, nextStartsAt: next };
  return {
    active: false,
    startsAt: next,
    endsAt: next === undefined ? undefined : next + w.durationMs,
    nextStartsAt: next === undefined ? undefined : nextSlot(w.schedule, next),
  };
}
