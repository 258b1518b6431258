import type { Clock } from '../lib/clock.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { AlertStore, Rollups, Store } from '../store/index.js';
import type { StatusPage } from './types.js';

const HOUR = 3_600_000;
const SLOTS = 24;

/** What the status page reads. */
export interface StatusDeps {
  service: string;
  clock: Clock;
  store: Pick<Store, 'latest'> & {
    rollups: Pick<Rollups, 'query' | 'summary' | 'lastHour'>;
    alerts: Pick<AlertStore, 'unresolvedIncidents'>;
  };
  probes(): readonly ProbeDefinition[];
  isRunning(probeId: string): boolean;
  /** Pages held because their channel is not configured, by channel (none when absent). */
  held?(): ReadonlyArray<{ channel: string; count: number; since: number }>;
  /** Who is on call now, per schedule. */
  onCall(now: number): StatusPage['oncall'];
  reportUrl: string;
  refreshSeconds?: number;
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * The state of things now: each probe's last run and its last 24 hours (hour rollups, and raw runs
 * for the hours not rolled up yet), open incidents and who is on call.
 */
export async function buildStatusPage(deps: StatusDeps): Promise<StatusPage> {
  const now = deps.clock.now();
  const current = Math.floor(now / HOUR) * HOUR;
  const first = current - (SLOTS - 1) * HOUR;
  const last = deps.store.rollups.lastHour();
  // Hours after the last one rolled up are read raw, one summary each (at most a couple normally).
  const rawFrom = last === undefined ? first : Math.max(first, last + HOUR);
  const probes: StatusPage['probes'] = [];
  let n = 0;
  for (const def of deps.probes()) {
    const slots = new Map<number, { runs: number; failures: number }>();
    if (rawFrom > first) for (const b of deps.store.rollups.query(def.id, first, rawFrom, 'hour')) slots.set(b.start, b);
    for (let h = rawFrom; h <= current; h += HOUR) {
      const s = deps.store.rollups.summary(def.id, h, Math.min(h + HOUR, now + 1));
      if (s.runs > 0) slots.set(h, s);
    }
    const lastRun = deps.store.latest(def.id);
    probes.push({
      id: def.id,
      kind: def.kind,
      labels: { ...def.labels },
      state: lastRun === undefined ? 'unknown' : lastRun.ok ? 'up' : 'down',
      running: deps.isRunning(def.id),
      lastRun:
        lastRun === undefined
          ? null
          : {
              at: new Date(lastRun.startedAt).toISOString(),
              ok: lastRun.ok,
              durationMs: Math.round(lastRun.durationMs * 10) / 10,
              code: lastRun.code ?? null,
              message: lastRun.message ?? null,
            },
      history: Array.from({ length: SLOTS }, (_, i) => {
        const start = first + i * HOUR;
        const s = slots.get(start);
        return { start: new Date(start).toISOString(), runs: s?.runs ?? 0, failures: s?.failures ?? 0 };
      }),
    });
    // A thousand probes read a few thousand rows: let requests and runs in between.
    if (++n % 100 === 0) await yieldLoop();
  }
  const incidents = deps.store.alerts
    .unresolvedIncidents()
    .sort((a, b) => b.openedAt - a.openedAt)
    .map((i) => ({
      id: i.id,
      probeId: i.probeId,
      severity: i.severity,
      state: i.state === 'acknowledged' ? ('acknowledged' as const) : ('open' as const),
      summary: i.summary,
      openedAt: new Date(i.openedAt).toISOString(),
      ackedBy: i.ackedBy ?? null,
    }));
  return {
    service: deps.service,
    generatedAt: new Date(now).toISOString(),
    refreshSeconds: deps.refreshSeconds ?? 30,
    reportUrl: deps.reportUrl,
    probes,
    incidents,
    oncall: deps.onCall(now),
    held: (deps.held?.() ?? []).map((h) => ({ channel: h.channel, count: h.count, since: new Date(h.since).toISOString() })),
  };
}
