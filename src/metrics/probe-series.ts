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

interface Entry {
  kind: string;
  /** `probe="…",kind="…"`, escaped once. */
  labels: string;
  success: number;
  lastRun: number;
  lastSuccess: number;
  ok: number;
  failed: number;
  /**
   * Non-cumulative bucket counts; the last slot is +Inf. Plain arrays, not Float64Arrays: a typed
   * array and its buffer cost ~200 bytes each before their numbers, 24 MB at 60,000 probes.
   */
  buckets: number[];
  sum: number;
  count: number;
  valueNames: readonly string[];
  /**
   * `,name="…"` of each value, one array shared by every probe with the same value names (a string
   * per probe and value was 8 of them for each http probe). Replaced, never changed in place: a
   * frozen scrape keeps the array it took.
   */
  nameLabels: readonly string[];
  values: number[];
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
const SUCCESS = 0;
const LAST_RUN = 1;
const LAST_SUCCESS = 2;
const OK = 3;
const FAILED = 4;
const SUM = 5;
const COUNT = 6;
const BUCKETS = 7;

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
    this.version++;
    const names = this.namesOf(valueNames);
    this.entries.set(id, {
      kind,
      labels,
      success: last?.ok ? 1 : 0,
      lastRun: last ? last.at : 0,
      lastSuccess: last?.ok ? last.at : 0,
      ok: 0,
      failed: 0,
      buckets: new Array<number>(this.bounds.length + 1).fill(0),
      sum: 0,
      count: 0,
      // Named fields, not a spread: a spread builds the entry with its fields out of line (+40 bytes).
      valueNames: names.valueNames,
      nameLabels: names.nameLabels,
      values: valueNames.map((n) => last?.values[n] ?? Number.NaN),
    });
  }

  /** Changes a declared probe's value names, keeping the values it still has. */
  revalue(id: string, valueNames: readonly string[]): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.version++;
    const old = new Map(e.valueNames.map((n, i) => [n, e.values[i] ?? Number.NaN]));
    const names = this.namesOf(valueNames);
    e.valueNames = names.valueNames;
    e.nameLabels = names.nameLabels;
    e.values = valueNames.map((n) => old.get(n) ?? Number.NaN);
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
    if (this.entries.delete(id)) this.version++;
  }

  observe(id: string, ok: boolean, seconds: number, at: number, values: Record<string, number>): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.version++;
    e.success = ok ? 1 : 0;
    e.lastRun = at;
    if (ok) {
      e.lastSuccess = at;
      e.ok++;
    } else e.failed++;
    let i = 0;
    // Past the last bound is the +Inf bucket.
    while (seconds > (this.bounds[i] ?? Number.POSITIVE_INFINITY)) i++;
    e.buckets[i] = (e.buckets[i] ?? 0) + 1;
    e.sum += seconds;
    e.count++;
    e.valueNames.forEach((name, k) => {
      e.values[k] = values[name] ?? Number.NaN;
    });
  }

  /**
   * Every probe's numbers now, in one flat copy. The six families of one scrape ask in turn with
   * nothing changed between, so they share one copy while a scrape still holds it.
   */
  private freeze(): Frozen {
    const kept = this.frozen?.version === this.version ? this.frozen.copy.deref() : undefined;
    if (kept) return kept;
    const probes = this.entries.size;
    const width = BUCKETS + this.bounds.length + 1;
    let size = 0;
    for (const e of this.entries.values()) size += width + e.values.length;
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
      at[i] = o;
      frozen.labels[i] = e.labels;
      frozen.nameLabels[i] = e.nameLabels;
      nums[o + SUCCESS] = e.success;
      nums[o + LAST_RUN] = e.lastRun;
      nums[o + LAST_SUCCESS] = e.lastSuccess;
      nums[o + OK] = e.ok;
      nums[o + FAILED] = e.failed;
      nums[o + SUM] = e.sum;
      nums[o + COUNT] = e.count;
      let cum = 0;
      for (let b = 0; b < e.buckets.length; b++) {
        cum += e.buckets[b] ?? 0;
        nums[o + BUCKETS + b] = cum;
      }
      nums.set(e.values, o + width);
      o += width + e.values.length;
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
