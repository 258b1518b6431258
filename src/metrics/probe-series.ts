import { Registry } from 'prom-client';

/**
 * The per-probe metric families, kept in flat arrays and rendered straight to the text format.
 *
 * prom-client hashes a label set on every observation and formats every series through generic
 * code at scrape time: about 5 µs a series, so 10,000 probes × ~19 series took ~1.9 s a scrape.
 * Here each probe's label text is escaped once, when it is declared, and a scrape is string
 * concatenation. The families still sit in the prom-client Registry (see FastRegistry), so
 * process and scheduler metrics and these come out of one `/metrics`.
 *
 * A scrape freezes the probes' numbers (one flat array, ~200 bytes a probe) and makes the text
 * from that copy in pieces of ~64 KB, as the reply takes them. At 60,000 probes the exposition is
 * ~96 MB of text: as one string (a rope of millions of small strings) it took ~390 MB of heap and
 * held the event loop for seconds. Streamed, a scrape holds the frozen numbers and a few pieces,
 * and every series of one scrape still comes from one instant, whatever runs end meanwhile.
 */

/** Characters a piece of text reaches before it is handed on. */
const PIECE_CHARS = 64 * 1024;

/**
 * A probe's series. Its numbers live in the shared slab (ProbeSeries.slab) from `at`: the fields at
 * SUCCESS…COUNT below, the non-cumulative bucket counts (the last is +Inf), then one per value name.
 * One Float64Array for every probe rather than fields and two arrays each: those took ~500 bytes a
 * probe (boxed timestamps and sums, two array objects and their stores), 30 MB at 60,000 probes.
 */
interface Entry {
  kind: string;
  /** `probe="…",kind="…"`, escaped once. */
  labels: string;
  /** The value names and their `,name="…"` label parts, shared by every probe with the same names. */
  names: NameSet;
  /** Where its numbers start in the slab; moved when the slab is compacted. */
  at: number;
}

/** The probes' numbers at one instant: what one scrape renders, whatever runs end while its text streams. */
interface Frozen {
  probes: number;
  labels: string[];
  nameLabels: Array<readonly string[]>;
  /** Per probe from `at[i]`: the fields below, then the cumulative buckets, then the values; `at[probes]` is the end. */
  nums: Float64Array;
  at: Uint32Array;
}
// Offsets of a probe's numbers, in the slab and in a frozen copy alike.
const SUCCESS = 0;
const LAST_RUN = 1;
const LAST_SUCCESS = 2;
const OK = 3;
const FAILED = 4;
const SUM = 5;
const COUNT = 6;
const BUCKETS = 7;

/** `n[i] += by` (an index within the slab is always there). */
const add = (n: Float64Array, i: number, by: number) => {
  n[i] = (n[i] ?? 0) + by;
};

/** What a family exposes to prom-client: its JSON form, and the text form FastRegistry streams. */
export interface TextMetric {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: 'sum';
    values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
  }>;
  /** The family's text as of this call, made piece by piece as the pieces are taken. */
  pieces(): Iterable<string>;
  reset(): void;
}

/** Whether a registered metric is one of ours that renders its own text (prom-client types it as its own classes). */
function rendersItself(metric: object): metric is Pick<TextMetric, 'pieces'> {
  return typeof Reflect.get(metric, 'pieces') === 'function';
}

/** A prom-client Registry that renders TextMetric families without the generic per-series path. */
export class FastRegistry extends Registry {
  /**
   * The exposition in pieces of ~64 KB, for a reply to stream. Every family's state is taken now
   * (prom-client's collected, ours frozen); the text of ours is made as the pieces are taken.
   */
  async exposition(): Promise<Iterable<string>> {
    const parts = await Promise.all(
      this.getMetricsAsArray().map((metric) => (rendersItself(metric) ? metric.pieces() : this.getSingleMetricAsString(metric.name))),
    );
    return joined(parts);
  }

  override async metrics(): Promise<string> {
    let text = '';
    for (const piece of await this.exposition()) text += piece;
    return text;
  }
}

/** The families' texts one blank line apart and a newline at the end, as prom-client joins them; small parts go out together. */
function* joined(parts: ReadonlyArray<string | Iterable<string>>): Generator<string> {
  let pending = '';
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k] ?? '';
    if (k > 0) pending += '\n\n';
    for (const piece of typeof part === 'string' ? [part] : part) {
      pending += piece;
      if (pending.length >= PIECE_CHARS) {
        yield pending;
        pending = '';
      }
    }
  }
  yield `${pending}\n`;
}

/** A family's text for the frozen probes: its header, then `lines` of each probe. */
function* familyText(frozen: Frozen, head: string, lines: (f: Frozen, i: number) => string): Generator<string> {
  // Joined from an array: one flat string a piece. `+=` builds a rope of thousands of small
  // strings, which the reply then flattens to encode it: as much work again, and more garbage.
  let parts: string[] = [head];
  let length = head.length;
  for (let i = 0; i < frozen.probes; i++) {
    const text = lines(frozen, i);
    parts.push(text);
    length += text.length;
    if (length >= PIECE_CHARS) {
      yield parts.join('');
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield parts.join('');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** A set of value names and their `,name="…"` label parts, shared by the probes that have it. */
interface NameSet {
  valueNames: readonly string[];
  nameLabels: readonly string[];
}

/** The probe families: success, duration histogram, runs by outcome, last run/success, named values. */
export class ProbeSeries {
  private readonly entries = new Map<string, Entry>();
  private readonly bucketText: string[];
  /** Numbers per probe before its values: the fields and the buckets. */
  private readonly width: number;
  /** Every probe's numbers (see Entry); [0, used) is allocated, `dead` of it belongs to no probe. */
  private slab = new Float64Array(1024);
  private used = 0;
  private dead = 0;
  /** Bumped by every change, so the families of one scrape share one frozen copy. */
  private version = 0;
  private frozen: { version: number; copy: WeakRef<Frozen> } | undefined;
  /** Value names and their `,name="…"` parts, by the names: probes of one kind share one. */
  private readonly nameSets = new Map<string, NameSet>();

  /** `location` labels every series of this instance, when it has one (several instances, one Prometheus). */
  constructor(
    private readonly bounds: readonly number[],
    private readonly location?: string,
  ) {
    this.bucketText = [...bounds.map((b) => `le="${num(b)}"`), 'le="+Inf"'];
    this.width = BUCKETS + bounds.length + 1;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Declares a probe with every series at its starting value. */
  declare(
    id: string,
    kind: string,
    valueNames: readonly string[],
    last?: { ok: boolean; at: number; values: Record<string, number> },
  ): void {
    const labels = `probe="${escapeLabel(id)}",kind="${escapeLabel(kind)}"${this.location ? `,location="${escapeLabel(this.location)}"` : ''}`;
    // Flattened now: the template makes a tree of joined pieces (~150 bytes at 60,000 probes against
    // ~55 flat, measured); reading a character makes V8 flatten it, and its GC drops the tree.
    labels.charCodeAt(0);
    this.version++;
    const names = this.namesOf(valueNames);
    const at = this.allocate(this.width + names.valueNames.length);
    // A probe declared again: its old numbers are dead (after allocate(), which may have moved them).
    const old = this.entries.get(id);
    if (old !== undefined) this.release(old);
    const n = this.slab;
    n.fill(0, at, at + this.width);
    if (last) {
      n[at + SUCCESS] = last.ok ? 1 : 0;
      n[at + LAST_RUN] = last.at;
      n[at + LAST_SUCCESS] = last.ok ? last.at : 0;
    }
    names.valueNames.forEach((name, k) => {
      n[at + this.width + k] = last?.values[name] ?? Number.NaN;
    });
    this.entries.set(id, { kind, labels, names, at });
  }

  /** Changes a declared probe's value names, keeping the values it still has. */
  revalue(id: string, valueNames: readonly string[]): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.version++;
    const names = this.namesOf(valueNames);
    const at = this.allocate(this.width + names.valueNames.length);
    // allocate() may have compacted the slab, moving e.at.
    const n = this.slab;
    n.copyWithin(at, e.at, e.at + this.width);
    const old = new Map(e.names.valueNames.map((name, k) => [name, n[e.at + this.width + k] ?? Number.NaN]));
    names.valueNames.forEach((name, k) => {
      n[at + this.width + k] = old.get(name) ?? Number.NaN;
    });
    this.release(e);
    e.names = names;
    e.at = at;
  }

  /**
   * Room made at once for `probes` more probes holding `values` named values among them: declared one
   * by one, 60,000 probes grow (and copy) the slab some thirty times on the way.
   */
  reserve(probes: number, values: number): void {
    const size = probes * this.width + values;
    if (this.used + size <= this.slab.length) return;
    // Only the room is wanted: allocate() grows the slab (compacting it), then the numbers are given back.
    this.used = this.allocate(size);
  }

  /** Room for `size` numbers at the slab's end: grown, or compacted first when half of it is dead. */
  private allocate(size: number): number {
    if (this.used + size > this.slab.length) {
      const live = this.used - this.dead;
      // A quarter to spare, not a doubling: at 60,000 probes a power of two left up to ~17 MB unused.
      const next = new Float64Array(Math.max(1024, Math.ceil((live + size) * 1.25)));
      let o = 0;
      for (const e of this.entries.values()) {
        const w = this.width + e.names.valueNames.length;
        next.set(this.slab.subarray(e.at, e.at + w), o);
        e.at = o;
        o += w;
      }
      this.slab = next;
      this.used = o;
      this.dead = 0;
    }
    const at = this.used;
    this.used += size;
    return at;
  }

  private release(e: Entry): void {
    this.dead += this.width + e.names.valueNames.length;
  }

  /**
   * One copy of a set of value names and its `,name="…"` label parts, however many probes have it
   * (every http probe has the same five).
   */
  private namesOf(valueNames: readonly string[]): NameSet {
    const key = valueNames.join('\n');
    let set = this.nameSets.get(key);
    if (set === undefined) {
      set = { valueNames: [...valueNames], nameLabels: valueNames.map((n) => `,name="${escapeLabel(n)}"`) };
      this.nameSets.set(key, set);
    }
    return set;
  }

  kindOf(id: string): string | undefined {
    return this.entries.get(id)?.kind;
  }

  remove(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    this.release(e);
    this.version++;
  }

  observe(id: string, ok: boolean, seconds: number, at: number, values: Record<string, number>): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.version++;
    const n = this.slab;
    const o = e.at;
    n[o + SUCCESS] = ok ? 1 : 0;
    n[o + LAST_RUN] = at;
    if (ok) {
      n[o + LAST_SUCCESS] = at;
      add(n, o + OK, 1);
    } else add(n, o + FAILED, 1);
    let i = 0;
    // Past the last bound is the +Inf bucket.
    while (seconds > (this.bounds[i] ?? Number.POSITIVE_INFINITY)) i++;
    add(n, o + BUCKETS + i, 1);
    add(n, o + SUM, seconds);
    add(n, o + COUNT, 1);
    const names = e.names.valueNames;
    for (let k = 0; k < names.length; k++) n[o + this.width + k] = values[names[k]!] ?? Number.NaN;
  }

  /**
   * Every probe's numbers now, in one flat copy. The six families of one scrape ask in turn with
   * nothing changed between, so they share one copy while a scrape still holds it.
   */
  private freeze(): Frozen {
    const kept = this.frozen?.version === this.version ? this.frozen.copy.deref() : undefined;
    if (kept) return kept;
    const probes = this.entries.size;
    const { width, slab } = this;
    let size = 0;
    for (const e of this.entries.values()) size += width + e.names.valueNames.length;
    const frozen: Frozen = {
      probes,
      labels: new Array<string>(probes),
      nameLabels: new Array<readonly string[]>(probes),
      nums: new Float64Array(size),
      at: new Uint32Array(probes + 1),
    };
    const { nums, at } = frozen;
    let i = 0;
    let o = 0;
    for (const e of this.entries.values()) {
      const w = width + e.names.valueNames.length;
      at[i] = o;
      frozen.labels[i] = e.labels;
      frozen.nameLabels[i] = e.names.nameLabels;
      nums.set(slab.subarray(e.at, e.at + w), o);
      // The buckets as the text format wants them: cumulative.
      for (let b = o + BUCKETS + 1; b < o + width; b++) nums[b] = (nums[b] ?? 0) + (nums[b - 1] ?? 0);
      o += w;
      i++;
    }
    at[probes] = o;
    this.frozen = { version: this.version, copy: new WeakRef(frozen) };
    return frozen;
  }

  /** The six families, ready to register. */
  families(): TextMetric[] {
    const family = (name: string, help: string, type: TextMetric['type'], lines: (f: Frozen, i: number) => string): TextMetric => {
      const head = `# HELP ${name} ${help}\n# TYPE ${name} ${type}`;
      const pieces = () => familyText(this.freeze(), head, lines);
      return {
        name,
        help,
        type,
        aggregator: 'sum',
        pieces,
        reset: () => {},
        // The generic form, for registries that are not FastRegistry (and getMetricsAsJSON).
        get: async () => ({
          name,
          help,
          type,
          aggregator: 'sum' as const,
          values: [...pieces()]
            .join('')
            .split('\n')
            .filter((l) => !l.startsWith('#'))
            .flatMap((l) => {
              const m = /^(\w+)\{(.*)\} (\S+)$/.exec(l);
              if (!m) return [];
              const [, metricName, labelText = '', value] = m;
              const labels: Record<string, string> = {};
              for (const [, k = '', v = ''] of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
              return [{ metricName, labels, value: Number(value === '+Inf' ? Number.POSITIVE_INFINITY : value) }];
            }),
        }),
      };
    };
    const bucketText = this.bucketText;
    const buckets = bucketText.length;
    const width = BUCKETS + buckets;
    return [
      family(
        'vigil_probe_success',
        'Whether the last run of the probe succeeded (1) or failed (0).',
        'gauge',
        (f, i) => `\nvigil_probe_success{${f.labels[i]}} ${f.nums[(f.at[i] ?? 0) + SUCCESS]}`,
      ),
      family('vigil_probe_duration_seconds', 'Duration of probe runs (the attempt that decided the outcome).', 'histogram', (f, i) => {
        const labels = f.labels[i];
        const o = f.at[i] ?? 0;
        let out = '';
        for (let b = 0; b < buckets; b++)
          out += `\nvigil_probe_duration_seconds_bucket{${labels},${bucketText[b]}} ${f.nums[o + BUCKETS + b]}`;
        return `${out}\nvigil_probe_duration_seconds_sum{${labels}} ${num(f.nums[o + SUM] ?? 0)}\nvigil_probe_duration_seconds_count{${labels}} ${f.nums[o + COUNT]}`;
      }),
      family('vigil_probe_runs_total', 'Probe runs by outcome.', 'counter', (f, i) => {
        const o = f.at[i] ?? 0;
        return `\nvigil_probe_runs_total{${f.labels[i]},outcome="success"} ${f.nums[o + OK]}\nvigil_probe_runs_total{${f.labels[i]},outcome="failure"} ${f.nums[o + FAILED]}`;
      }),
      family(
        'vigil_probe_last_run_timestamp_seconds',
        'When the probe last ran (0 = never).',
        'gauge',
        (f, i) => `\nvigil_probe_last_run_timestamp_seconds{${f.labels[i]}} ${num(f.nums[(f.at[i] ?? 0) + LAST_RUN] ?? 0)}`,
      ),
      family(
        'vigil_probe_last_success_timestamp_seconds',
        'When the probe last succeeded (0 = not known).',
        'gauge',
        (f, i) => `\nvigil_probe_last_success_timestamp_seconds{${f.labels[i]}} ${num(f.nums[(f.at[i] ?? 0) + LAST_SUCCESS] ?? 0)}`,
      ),
      family(
        'vigil_probe_value',
        'A named value of the last run (latency_ms, days_remaining, p95_ms, …); NaN before the first.',
        'gauge',
        (f, i) => {
          const names = f.nameLabels[i] ?? [];
          const labels = f.labels[i];
          const o = (f.at[i] ?? 0) + width;
          let out = '';
          for (let k = 0; k < names.length; k++) out += `\nvigil_probe_value{${labels}${names[k]}} ${num(f.nums[o + k] ?? Number.NaN)}`;
          return out;
        },
      ),
    ];
  }
}
