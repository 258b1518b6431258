/**
 * The backend-neutral half of rollups: the aggregate of a bucket, and the engine that rolls raw runs
 * into hour and day rows and reads windows back. A backend (SQLite, PostgreSQL) supplies only the
 * reads and writes, through RollupBackend, so both answer every query the same way.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { QuantileSketch, type SketchJSON } from './sketch.js';
import type { RollupBucket, RollupPeriod, RollupSummary, Rollups, ValueAggregate } from './types.js';

export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export interface RollupOptions {
  /** Hours rolled per rollUp() call, so a long outage catches up over several calls. Default 48. */
  maxHours?: number;
  /**
   * An hour is rolled only once it ended this long ago. A run is stored with the time it started
   * and written when it ends (plus a batch interval), so the last runs of an hour land after it. Default 5 min.
   */
  graceMs?: number;
  /** How long day rollups are kept. Default 400 days. */
  retentionDays?: number;
  /**
   * How long hour rollups are kept. Default 31 days: hour rows are 24 of every 25 rollup rows (~1 kB
   * each on disk), and the longest window read at hour resolution is 30 days back (the probe page's
   * month and the uptime badge start inside a day: that day's hours come from hour rows); whole days
   * (the report, the public status page's 90 days) read day rows.
   */
  hourRetentionDays?: number;
  /**
   * Raw rows (or rollup rows) handled between yields to the event loop. Default 500 (~2 ms quiet, a
   * run with five duration values costing ~4 µs): the roll-up must never hold the loop 20 ms, even
   * on a machine whose other core is busy.
   */
  chunkRows?: number;
  /**
   * Rollup rows written per transaction, with a yield between: a day of 1,000 probes is 24,000 hour
   * rows (~20 µs each), which in one transaction held the event loop ~0.5 s. Default 200 (~4 ms).
   */
  writeRows?: number;
  /**
   * Named values whose percentiles matter (the log-ingestion canary's latency): each gets a sketch
   * of its own in the rollups, so their p95 survives the raw runs. So does every value whose name
   * says it is a duration (`_ms`, `_s`: see `isDuration`). Other values keep min/max/last/mean.
   * Value sketches live in day rows, and in hour rows only until their day is rolled up: then the
   * day row carries them and the hour rows are rewritten without (see `withoutValueSketches`).
   */
  sketchValues?: readonly string[];
  /**
   * Whole days kept parsed in memory (about 2 KB each), so a report reads no day row twice: a
   * 30-day report of 100 probes merges 3,000 of them. Filled as days are rolled up and as reports
   * read them; dropped when a day is rewritten or pruned. Default 10,000.
   */
  cachedDays?: number;
}

export const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * A value named in a unit of time (`connect_ms`, `restore_s`) is a duration, and a duration's p95 is
 * what a reader asks of it: without a sketch the report's p95 column read "—" for every one of them.
 */
export function isDuration(name: string): boolean {
  return name.endsWith('_ms') || name.endsWith('_s');
}

/** A value's aggregate as stored in a rollup row: with its sketch when the value is sketched. */
type StoredValue = ValueAggregate & { q?: SketchJSON };

/**
 * An hour row's `vals` once its day row is written: the same aggregates without the value sketches.
 * Value sketches made hour rows ~2.2x larger (0.86 → 1.9 kB at five sketched values), and hour rows
 * are 24 of every 25 rollup rows; the day row keeps the sketches, so every whole day still has its
 * value percentiles. Only a window edge inside a past day, read from hour rows, loses those hours'
 * share of a value's p95 (never of runs, failures, uptime, the run-duration percentiles or min/max/mean).
 */
export function withoutValueSketches(vals: string): string {
  if (!vals.includes('"q"')) return vals;
  const out: Record<string, ValueAggregate> = {};
  for (const [name, { q: _q, ...agg }] of entriesOf(vals, isStoredValue)) out[name] = agg;
  return JSON.stringify(out);
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isStoredValue = (v: unknown): v is StoredValue =>
  typeof v === 'object' && v !== null && ['min', 'max', 'last', 'sum', 'count'].every((k) => isNumber(Reflect.get(v, k)));

/** The entries of a JSON object column whose values pass `is`; anything else in it is skipped, not trusted. */
function entriesOf<T>(text: string, is: (v: unknown) => v is T): Array<[string, T]> {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) return [];
  return Object.entries(parsed).filter((e): e is [string, T] => is(e[1]));
}

/** Runs, failures, a duration sketch, value aggregates and failure codes of one probe over one bucket. */
export class Aggregate {
  runs = 0;
  failures = 0;
  readonly duration = new QuantileSketch();
  readonly values = new Map<string, ValueAggregate>();
  readonly valueSketches = new Map<string, QuantileSketch>();
  readonly codes: Record<string, number> = {};
  /** start of the latest input, so `last` follows time even when inputs arrive out of order. */
  private readonly lastAt = new Map<string, number>();

  constructor(private readonly sketched: ReadonlySet<string>) {}

  addRun(startedAt: number, durationMs: number, ok: number, code: string | null, vals: string | null) {
    this.runs++;
    this.duration.add(durationMs);
    if (ok === 0) {
      this.failures++;
      const c = code ?? 'UNKNOWN';
      this.codes[c] = (this.codes[c] ?? 0) + 1;
    }
    if (vals === null || vals === '{}') return;
    // A hot loop (every raw run of the hour): no entries array; each value is checked before use.
    const parsed: Record<string, unknown> = JSON.parse(vals);
    for (const name in parsed) {
      const v = parsed[name];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      this.addValue(name, { min: v, max: v, last: v, sum: v, count: 1 }, startedAt);
      if (this.sketched.has(name) || isDuration(name)) this.sketchOf(name).add(v);
    }
  }

  addRow(start: number, row: RollupRow) {
    this.runs += row.runs;
    this.failures += row.failures;
    this.duration.merge(QuantileSketch.fromJSON(row.duration));
    for (const [name, a] of entriesOf(row.vals, isStoredValue)) {
      const { q, ...agg } = a;
      this.addValue(name, agg, start);
      if (q !== undefined) this.sketchOf(name).merge(QuantileSketch.fromJSON(q));
    }
    for (const [c, n] of entriesOf(row.codes, isNumber)) this.codes[c] = (this.codes[c] ?? 0) + n;
  }

  /** Adds another aggregate of the same probe (a day into a window); `at` orders their `last` values. */
  addAggregate(other: Aggregate) {
    this.runs += other.runs;
    this.failures += other.failures;
    this.duration.merge(other.duration);
    for (const [name, a] of other.values) this.addValue(name, a, other.lastAt.get(name)!);
    for (const [name, q] of other.valueSketches) this.sketchOf(name).merge(q);
    for (const [c, n] of Object.entries(other.codes)) this.codes[c] = (this.codes[c] ?? 0) + n;
  }

  private sketchOf(name: string): QuantileSketch {
    let q = this.valueSketches.get(name);
    if (q === undefined) {
      q = new QuantileSketch();
      this.valueSketches.set(name, q);
    }
    return q;
  }

  private addValue(name: string, a: ValueAggregate, at: number) {
    const cur = this.values.get(name);
    if (cur === undefined) {
      this.values.set(name, { min: a.min, max: a.max, last: a.last, sum: a.sum, count: a.count });
      this.lastAt.set(name, at);
      return;
    }
    if (a.min < cur.min) cur.min = a.min;
    if (a.max > cur.max) cur.max = a.max;
    cur.sum += a.sum;
    cur.count += a.count;
    if (at >= this.lastAt.get(name)!) {
      cur.last = a.last;
      this.lastAt.set(name, at);
    }
  }

  row(probe: number, period: RollupPeriod, start: number): unknown[] {
    const vals: Record<string, StoredValue> = {};
    for (const [name, a] of this.values) {
      const q = this.valueSketches.get(name);
      // A sum of two-decimal values prints as 193.22999999999996: 12 significant digits keep the
      // mean exact to 1e-12 and take ~10 bytes a value off every stored row.
      const stored = { ...a, sum: Number(a.sum.toPrecision(12)) };
      vals[name] = q === undefined ? stored : { ...stored, q: q.toJSON() };
    }
    return [
      probe,
      period,
      start,
      this.runs,
      this.failures,
      JSON.stringify(this.duration),
      JSON.stringify(vals),
      JSON.stringify(this.codes),
    ];
  }

  stats() {
    const d = this.duration;
    const values: Record<string, ValueAggregate> = {};
    for (const [name, a] of this.values) {
      const p95 = this.valueSketches.get(name)?.quantile(0.95);
      values[name] = p95 === undefined ? { ...a } : { ...a, p95 };
    }
    const [p50, p95, p99] = d.quantiles([0.5, 0.95, 0.99]);
    return {
      runs: this.runs,
      failures: this.failures,
      ...(d.count > 0 ? { p50, p95, p99, minMs: d.min, maxMs: d.max, meanMs: d.sum / d.count } : {}),
      values,
      codes: { ...this.codes },
    };
  }
}

/** Orders Aggregate.row() tuples by the rollups' primary key (probe, period, start). */
function byKey(a: unknown[], b: unknown[]): number {
  for (let i = 0; i < 3; i++) {
    const x = a[i] as number | string;
    const y = b[i] as number | string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** started_at, duration_ms, ok, code, vals */
export type RawRun = [number, number, number, string | null, string | null];

export function summaryOf(probeId: string, from: number, to: number, agg: Aggregate): RollupSummary {
  const s = agg.stats();
  return { probeId, from, to, ...s, ...(s.runs > 0 ? { uptime: (s.runs - s.failures) / s.runs } : {}) };
}

export interface RollupRow {
  start: number;
  runs: number;
  failures: number;
  duration: string;
  vals: string;
  codes: string;
}

/**
 * What the engine needs of a database, every call a promise (SQLite answers at once, PostgreSQL off
 * the event loop). Probes are named by the backend's integer key.
 */
export interface RollupBackend {
  /** The probe's key, or undefined when it has no runs yet. */
  probeKey(probeId: string): Promise<number | undefined>;
  probes(): Promise<number[]>;
  /** The probe's first raw run (epoch ms), or undefined without runs. */
  firstRun(probe: number): Promise<number | undefined>;
  /** One probe's raw runs in [from, to), in time order (ties by insertion), so `last` is the latest run. */
  runs(probe: number, from: number, to: number): Promise<RawRun[]>;
  /** One probe's rollup rows of a period with start in [from, to), oldest first. */
  rows(probe: number, period: RollupPeriod, from: number, to: number): Promise<RollupRow[]>;
  /** Start of the last hour rolled up, as the database has it. */
  lastHour(): Promise<number | undefined>;
  /**
   * Upserts rollup rows (Aggregate.row() tuples; a redone hour overwrites, never doubles) and, when
   * given, moves the last hour rolled, in one transaction.
   */
  write(rows: unknown[][], lastHour: number | undefined): Promise<void>;
  /** Deletes one probe's rows of a period that start before `before`; returns how many. */
  prune(probe: number, period: RollupPeriod, before: number): Promise<number>;
  /** Probes with rollup rows. */
  rolledProbes(): Promise<number[]>;
  /**
   * Runs a roll-up unless another is under way elsewhere (another instance on a shared database);
   * resolves undefined then. Absent: only this process rolls up.
   */
  exclusive?<T>(fn: () => Promise<T>): Promise<T | undefined>;
}

/** The engine's Rollups, and how its owner fills the one value it keeps in memory. */
export interface RollupEngine extends Rollups {
  /** Reads the last hour rolled up into memory (at start: the store's ready()). */
  load(): Promise<void>;
}

/**
 * Hourly and daily rollups of raw runs, kept for a year and more while raw runs follow a short
 * retention. Percentiles come from a mergeable sketch (src/store/sketch.ts): within 1 % relative
 * error of the exact percentile of the raw durations, whether or not the raw runs still exist.
 */
export function createRollupEngine(
  db: RollupBackend,
  clock: Clock,
  log: Logger,
  opts: RollupOptions = {},
  /** The last hour rolled up, when the backend can tell at once (SQLite); otherwise load() reads it. */
  initialLastHour?: number,
): RollupEngine {
  const maxHours = opts.maxHours ?? 48;
  const graceMs = opts.graceMs ?? 5 * 60_000;
  const retentionMs = (opts.retentionDays ?? 400) * DAY;
  const hourRetentionMs = (opts.hourRetentionDays ?? 31) * DAY;
  const chunkRows = opts.chunkRows ?? 500;
  const writeRows = opts.writeRows ?? 200;
  const sketched: ReadonlySet<string> = new Set(opts.sketchValues ?? []);
  const maxCached = opts.cachedDays ?? 10_000;
  /** `probe:start` → a whole day, parsed, and its stats; insertion order is age (oldest first). */
  const cached = new Map<string, { start: number; agg: Aggregate; stats: ReturnType<Aggregate['stats']> }>();
  const cacheDay = (probe: number, start: number, agg: Aggregate) => {
    const key = `${probe}:${start}`;
    cached.delete(key);
    cached.set(key, { start, agg, stats: agg.stats() });
    if (cached.size > maxCached) cached.delete(cached.keys().next().value!);
  };

  let running = false;
  /**
   * Start of the last hour rolled up, kept in memory so `lastHour()` answers without the database.
   * Moved by this engine's writes and re-read at every roll-up: on a shared database another
   * instance may be the one rolling up, and reads merge rollup rows only up to this hour (raw runs
   * after it), so a stale value is never wrong, only slower.
   */
  let lastRolled = initialLastHour;
  /**
   * Writes rows a slice at a time, yielding between, and moves the state with the last slice only:
   * a crash in between leaves the state behind, so the hours are redone (REPLACE), never skipped.
   * Sorted by (probe, period, start), the primary key, so each slice touches a few probes' leaf
   * pages once instead of every probe's page in every slice.
   */
  const write = async (rows: unknown[][], state: number | undefined) => {
    const sorted = [...rows].sort(byKey);
    for (let i = 0; i < sorted.length || i === 0; i += writeRows) {
      const last = i + writeRows >= sorted.length;
      await db.write(sorted.slice(i, i + writeRows), last ? state : undefined);
      if (!last) await yieldLoop();
    }
    if (state !== undefined) lastRolled = state;
  };

  /** Aggregates raw runs of every probe for one hour, yielding every chunkRows rows. */
  async function hourRows(h: number): Promise<unknown[][]> {
    const out: unknown[][] = [];
    let sinceYield = 0;
    for (const probe of await db.probes()) {
      const runs = await db.runs(probe, h, h + HOUR);
      if (runs.length > 0) {
        const agg = new Aggregate(sketched);
        // A probe run every second has 3,600 runs an hour: it yields within its own hour too.
        for (const [startedAt, duration, ok, code, vals] of runs) {
          agg.addRun(startedAt, duration, ok, code, vals);
          if (++sinceYield >= chunkRows) {
            sinceYield = 0;
            await yieldLoop();
          }
        }
        out.push(agg.row(probe, 'hour', h));
      }
      if (++sinceYield >= chunkRows) {
        sinceYield = 0;
        await yieldLoop();
      }
    }
    return out;
  }

  /**
   * Merges a UTC day's hour rows into day rows, and gives those hour rows back without their value
   * sketches (the day row now holds them), to be written with it.
   */
  async function dayRows(day: number): Promise<{ rows: unknown[][]; aggs: Array<[number, Aggregate]> }> {
    const out: unknown[][] = [];
    const aggs: Array<[number, Aggregate]> = [];
    let sinceYield = 0;
    for (const probe of await db.probes()) {
      const rows = await db.rows(probe, 'hour', day, day + DAY);
      if (rows.length > 0) {
        const agg = new Aggregate(sketched);
        for (const r of rows) {
          // An hour already stripped (its day merged once, then redone after a crash or by hand)
          // is rebuilt from its raw runs while they last, so the day row keeps every value sketch.
          const rebuilt = lacksSketches(r.vals) ? await fromRaw(probe, r) : undefined;
          if (rebuilt !== undefined) agg.addAggregate(rebuilt);
          else agg.addRow(r.start, r);
        }
        const row = agg.row(probe, 'day', day);
        out.push(row);
        // Kept in memory as read back from the row (sums rounded as stored), so a cached day answers
        // exactly what its row does.
        const [, , , runs, failures, duration, vals, codes] = row as [number, string, number, number, number, string, string, string];
        const stored = new Aggregate(sketched);
        stored.addRow(day, { start: day, runs, failures, duration, vals, codes });
        aggs.push([probe, stored]);
        for (const r of rows) {
          const vals = withoutValueSketches(r.vals);
          if (vals !== r.vals) out.push([probe, 'hour', r.start, r.runs, r.failures, r.duration, vals, r.codes]);
        }
      }
      // A merged sketch costs about as much as a few dozen raw rows.
      sinceYield += rows.length * 20 + 1;
      if (sinceYield >= chunkRows) {
        sinceYield = 0;
        await yieldLoop();
      }
    }
    return { rows: out, aggs };
  }

  /** Whether an hour row's sketchable values came without their sketches (see withoutValueSketches). */
  const lacksSketches = (vals: string) =>
    !vals.includes('"q"') && entriesOf(vals, isStoredValue).some(([name]) => sketched.has(name) || isDuration(name));

  /** An hour row's aggregate made again from its raw runs, or undefined when they are not all there. */
  async function fromRaw(probe: number, r: RollupRow): Promise<Aggregate | undefined> {
    const runs = await db.runs(probe, r.start, r.start + HOUR);
    if (runs.length !== r.runs) return undefined;
    const agg = new Aggregate(sketched);
    for (const [startedAt, duration, ok, code, vals] of runs) agg.addRun(startedAt, duration, ok, code, vals);
    return agg;
  }

  async function startHour(): Promise<number | undefined> {
    let first: number | undefined;
    let sinceYield = 0;
    for (const probe of await db.probes()) {
      const t = await db.firstRun(probe);
      if (t !== undefined && (first === undefined || t < first)) first = t;
      // A probe is one index read: at 60,000 probes a profile gave this walk ~0.2 s of its own time, in one piece.
      if (++sinceYield >= chunkRows) {
        sinceYield = 0;
        await yieldLoop();
      }
    }
    return first === undefined ? undefined : Math.floor(first / HOUR) * HOUR;
  }

  async function rollHours(now: number): Promise<number> {
    const state = await db.lastHour();
    lastRolled = state;
    let h: number;
    if (state !== undefined) h = state + HOUR;
    else {
      const first = await startHour();
      if (first === undefined) return 0;
      h = first;
    }
    let done = 0;
    const t0 = performance.now();
    // Hour rows are written a day (or a call) at a time, not an hour at a time: the primary key
    // leads with the probe, so every hour touches one leaf page per probe, and committing 24
    // hours together writes those pages to the WAL once instead of 24 times. Hourly commits
    // filled the WAL (and stalled the loop on its checkpoint) every ~100 hours of 100 probes.
    let pending: unknown[][] = [];
    for (; h + HOUR <= now - graceMs && done < maxHours; h += HOUR) {
      pending.push(...(await hourRows(h)));
      done++;
      if ((h + HOUR) % DAY === 0) {
        // The day's last hour: its rows first, then the day merged from all 24, and only then the
        // state, so a crash in between redoes these hours and the day instead of skipping the day.
        await write(pending, undefined);
        pending = [];
        const day = h + HOUR - DAY;
        const { rows, aggs } = await dayRows(day);
        // The day row and its hour rows' lighter form, then the state: a crash before the state
        // moves redoes the day's hours from raw runs, sketches and all.
        await write(rows, h);
        // The day just written is what the next report reads: keep it parsed.
        for (const [probe, agg] of aggs) cacheDay(probe, day, agg);
      }
      await yieldLoop();
    }
    if (pending.length > 0) await write(pending, h - HOUR);
    if (done > 0) log.debug({ hours: done, through: new Date(h).toISOString(), ms: Math.round(performance.now() - t0) }, 'runs rolled up');
    return done;
  }

  /**
   * Adds one probe's [from, to) to `agg`: day rows for whole UTC days, hour rows for the rest of
   * what is rolled up, and raw runs for what is not (the hours since the last roll-up, and
   * unaligned edges).
   */
  async function collect(probe: number, from: number, to: number, agg: Aggregate) {
    const last = lastRolled;
    const rolledTo = last === undefined ? Number.NEGATIVE_INFINITY : last + HOUR;
    const a = Math.ceil(from / HOUR) * HOUR;
    const b = Math.min(Math.floor(to / HOUR) * HOUR, rolledTo);
    if (a >= b) {
      await raw(probe, from, to, agg);
      return;
    }
    await raw(probe, from, a, agg);
    await rolled(probe, a, b, agg);
    await raw(probe, b, to, agg);
  }

  async function raw(probe: number, from: number, to: number, agg: Aggregate) {
    if (from >= to) return;
    for (const [startedAt, duration, ok, code, vals] of await db.runs(probe, from, to)) agg.addRun(startedAt, duration, ok, code, vals);
  }

  /** Hour-aligned [from, to) from rollup rows. */
  async function rolled(probe: number, from: number, to: number, agg: Aggregate) {
    const dayFrom = Math.ceil(from / DAY) * DAY;
    const dayTo = Math.floor(to / DAY) * DAY;
    const hourRanges: Array<[number, number]> = [];
    if (dayFrom < dayTo) {
      const days = await db.rows(probe, 'day', dayFrom, dayTo);
      for (const r of days) agg.addRow(r.start, r);
      // A day without a day row (not complete yet when last rolled, or the roll-up behind) still
      // counts through whatever hour rows it has.
      const covered = new Set(days.map((r) => r.start));
      hourRanges.push([from, dayFrom], [dayTo, to]);
      for (let d = dayFrom; d < dayTo; d += DAY) if (!covered.has(d)) hourRanges.push([d, d + DAY]);
    } else hourRanges.push([from, to]);
    for (const [x, y] of hourRanges) {
      if (x >= y) continue;
      for (const r of await db.rows(probe, 'hour', x, y)) agg.addRow(r.start, r);
    }
  }

  return {
    async rollUp(now) {
      // One roll-up at a time: an hourly timer and a manual call must not interleave their hours.
      if (running) return 0;
      running = true;
      try {
        const done = await (db.exclusive ? db.exclusive(() => rollHours(now)) : rollHours(now));
        // Another instance rolled up instead: its progress is what reads merge up to.
        if (done === undefined) lastRolled = await db.lastHour();
        return done ?? 0;
      } finally {
        running = false;
      }
    },

    async prune(before = clock.now() - retentionMs) {
      let total = 0;
      // Only the days going: housekeeping prunes every hour, and clearing all of them made the
      // report after each round a cold one (~0.9 s for 100 probes over 30 days instead of ~17 ms).
      for (const [key, day] of cached) if (day.start < before) cached.delete(key);
      const hoursBefore = Math.max(before, clock.now() - hourRetentionMs);
      for (const probe of await db.rolledProbes()) {
        // Per (probe, period): a primary-key range each, and a yield between, however many rows.
        total += await db.prune(probe, 'hour', hoursBefore);
        total += await db.prune(probe, 'day', before);
        await yieldLoop();
      }
      if (total > 0) log.info({ deleted: total, before: new Date(before).toISOString() }, 'rollups pruned');
      return total;
    },

    async query(probeId, from, to, period) {
      const probe = await db.probeKey(probeId);
      if (probe === undefined) return [];
      return (await db.rows(probe, period, from, to)).map((r): RollupBucket => {
        const agg = new Aggregate(sketched);
        agg.addRow(r.start, r);
        return { probeId, period, start: r.start, ...agg.stats() };
      });
    },

    async summary(probeId, from, to) {
      const agg = new Aggregate(sketched);
      const probe = await db.probeKey(probeId);
      if (probe !== undefined) await collect(probe, from, to, agg);
      return summaryOf(probeId, from, to, agg);
    },

    async window(probeId, from, to) {
      const probe = await db.probeKey(probeId);
      const total = new Aggregate(sketched);
      const out: RollupBucket[] = [];
      if (from < to) {
        const firstDay = Math.floor(from / DAY) * DAY;
        // Whole days read their day row in one query; the ragged edges and days without a row (not
        // rolled yet) go through hour rows and raw runs. A probe without runs still gets its days, empty.
        let rows: Map<number, RollupRow> | undefined;
        for (let d = firstDay; d < to; d += DAY) {
          const lo = Math.max(d, from);
          const hi = Math.min(d + DAY, to);
          const whole = lo === d && hi === d + DAY;
          const hit = whole && probe !== undefined ? cached.get(`${probe}:${d}`) : undefined;
          if (hit !== undefined) {
            total.addAggregate(hit.agg);
            out.push({ probeId, period: 'day', start: d, ...hit.stats });
            continue;
          }
          // One query for all the window's day rows, made on the first day not in the cache.
          rows ??= new Map((probe === undefined ? [] : await db.rows(probe, 'day', firstDay, to)).map((r) => [r.start, r]));
          const agg = new Aggregate(sketched);
          const row = rows.get(d);
          if (row !== undefined && whole) {
            agg.addRow(d, row);
            cacheDay(probe!, d, agg);
          } else if (probe !== undefined) await collect(probe, lo, hi, agg);
          total.addAggregate(agg);
          out.push({ probeId, period: 'day', start: d, ...agg.stats() });
        }
      }
      return { days: out, total: summaryOf(probeId, from, to, total) };
    },

    async warm(from, to) {
      let n = 0;
      for (const probe of await db.probes()) {
        for (const r of await db.rows(probe, 'day', Math.ceil(from / DAY) * DAY, to)) {
          if (cached.has(`${probe}:${r.start}`)) continue;
          const agg = new Aggregate(sketched);
          agg.addRow(r.start, r);
          cacheDay(probe, r.start, agg);
          n++;
        }
        await yieldLoop();
      }
      return n;
    },

    lastHour: () => lastRolled,

    async load() {
      lastRolled = await db.lastHour();
    },
  };
}
