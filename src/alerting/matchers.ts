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
  const task = cron.createTask(w.schedule, () => {});
  try {
    const step = w.schedule.trim().split(/\s+/).length === 6 ? 1000 : 60_000;
    const start = Math.floor(now / step) * step;
    for (let t = start; t > now - w.durationMs; t -= step) if (task.match(new Date(t))) return true;
    return false;
  } finally {
    void task.destroy();
  }
}
