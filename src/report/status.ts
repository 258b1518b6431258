import type { Clock } from '../lib/clock.js';
import { own } from '../lib/own.js';
import type { CurrentOnCall } from '../oncall/index.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { AlertStore, Rollups, Store } from '../store/index.js';
import type { StatusPage } from './types.js';

const HOUR = 3_600_000;
const SLOTS = 24;
/** Probes whose reads are in flight at once (see READ_BATCH in build.ts); the loop is handed back between batches. */
const READ_BATCH = 50;

/** What the status page reads. */
export interface StatusDeps {
  service: string;
  clock: Clock;
  store: Pick<Store, 'latest'> & {
    rollups: Pick<Rollups, 'query' | 'summary' | 'lastHour'>;
    alerts: Pick<AlertStore, 'unresolvedIncidents' | 'incidents' | 'silences'>;
  };
  probes(): readonly ProbeDefinition[];
  isRunning(probeId: string): boolean;
  /**
   * Incidents with a page given up on, each with when its newest such page was queued: kept by
   * the alert snapshot, so loading `/` does not read a month of outbox rows.
   */
  undelivered(): Promise<ReadonlyMap<number, number>>;
  /** Pages held because their channel is not configured, by channel (none when absent). */
  held?(): Promise<ReadonlyArray<{ channel: string; count: number; since: number }>>;
  /** Who is on call, per schedule. */
  oncall: Pick<CurrentOnCall, 'roster'>;
  /** People by id, for the names of who is on call. */
  people(): Record<string, { name: string }>;
  reportUrl: string;
  refreshSeconds?: number;
  /** The configured maintenance windows as they stand now (none when absent). */
  maintenance?(now: number): NonNullable<StatusPage['maintenance']>;
}

/** How far back the incident history on `/` reaches. */
export const HISTORY_DAYS = 30;
const DAY = 86_400_000;
/** Incidents the history shows at most: a flapping month must not make the page megabytes long. */
const HISTORY_LIMIT = 200;

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * The state of things now: each probe's last run and its last 24 hours (hour rollups, and raw runs
 * for the hours not rolled up yet), open incidents and who is on call. The reads go out together
 * (a batch of probes at a time), so the page waits on the database about once, not once per probe.
 */
export async function buildStatusPage(deps: StatusDeps): Promise<StatusPage> {
  const now = deps.clock.now();
  const current = Math.floor(now / HOUR) * HOUR;
  const first = current - (SLOTS - 1) * HOUR;
  const last = deps.store.rollups.lastHour();
  // Hours after the last one rolled up are read raw, one summary each (at most a couple normally).
  const rawFrom = last === undefined ? first : Math.max(first, last + HOUR);
  // Started first, awaited last: read while the probes are. Their rejections are handled when
  // awaited; the empty catch only keeps one from being reported as unhandled while a probe read fails first.
  const since = now - HISTORY_DAYS * DAY;
  const alerts = deps.store.alerts;
  const others = Promise.all([
    alerts.unresolvedIncidents(),
    deps.held?.() ?? [],
    deps.oncall.roster(now),
    alerts.incidents({ state: 'resolved', since, limit: HISTORY_LIMIT }),
    alerts.silences(now),
    deps.undelivered(),
  ]);
  others.catch(() => {});
  const hours: number[] = [];
  for (let h = rawFrom; h <= current; h += HOUR) hours.push(h);
  const history = async (def: ProbeDefinition) => {
    const [rolled, raw] = await Promise.all([
      rawFrom > first ? deps.store.rollups.query(def.id, first, rawFrom, 'hour') : [],
      Promise.all(hours.map((h) => deps.store.rollups.summary(def.id, h, Math.min(h + HOUR, now + 1)))),
    ]);
    const slots = new Map<number, { runs: number; failures: number }>();
    for (const b of rolled) slots.set(b.start, b);
    raw.forEach((s, i) => {
      if (s.runs > 0) slots.set(hours[i]!, s);
    });
    return slots;
  };
  const defs = deps.probes();
  const probes: StatusPage['probes'] = [];
  for (let i = 0; i < defs.length; i += READ_BATCH) {
    probes.push(...(await Promise.all(defs.slice(i, i + READ_BATCH).map(async (def) => probeStatus(def, await history(def))))));
    // A thousand probes read a few thousand rows: let requests and runs in between.
    await yieldLoop();
  }
  const [unresolved, held, roster, resolved, silences, undelivered] = await others;
  // Given-up pages of the month: an incident among them is flagged, open or past.
  const dead = new Set<number>();
  for (const [id, queuedAt] of undelivered) if (queuedAt >= since) dead.add(id);
  const incidents = unresolved
    .sort((a, b) => b.openedAt - a.openedAt)
    .map((i) => ({
      id: i.id,
      probeId: i.probeId,
      severity: i.severity,
      state: i.state === 'acknowledged' ? ('acknowledged' as const) : ('open' as const),
      summary: i.summary,
      openedAt: new Date(i.openedAt).toISOString(),
      ackedBy: i.ackedBy ?? null,
      undelivered: dead.has(i.id),
    }));
  return {
    service: deps.service,
    generatedAt: new Date(now).toISOString(),
    ...(deps.refreshSeconds !== undefined ? { refreshSeconds: deps.refreshSeconds } : {}),
    reportUrl: deps.reportUrl,
    probes,
    incidents,
    oncall: roster.schedules.map(({ schedule, current }) => ({
      schedule,
      person: current?.person ?? null,
      name: current === undefined ? null : (own(deps.people(), current.person)?.name ?? current.person),
      until: current === undefined || !Number.isFinite(current.until) ? null : new Date(current.until).toISOString(),
    })),
    held: held.map((h) => ({ channel: h.channel, count: h.count, since: new Date(h.since).toISOString() })),
    recent: resolved
      .filter((i) => i.resolvedAt !== undefined && i.resolvedAt >= since)
      .map((i) => ({
        id: i.id,
        probeId: i.probeId,
        severity: i.severity,
        summary: i.summary,
        openedAt: new Date(i.openedAt).toISOString(),
        resolvedAt: new Date(i.resolvedAt ?? now).toISOString(),
        undelivered: dead.has(i.id),
      })),
    silences: silences
      .filter((s) => s.startsAt <= now && now < s.endsAt)
      .map((s) => ({
        id: s.id,
        probes: [...s.probes],
        labels: { ...s.labels },
        endsAt: new Date(s.endsAt).toISOString(),
        author: s.author,
        comment: s.comment,
      })),
    maintenance: deps.maintenance?.(now) ?? [],
  };

  function probeStatus(def: ProbeDefinition, slots: Map<number, { runs: number; failures: number }>): StatusPage['probes'][number] {
    const lastRun = deps.store.latest(def.id);
    return {
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
    };
  }
}
