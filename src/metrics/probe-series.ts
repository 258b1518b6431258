import { Registry } from 'prom-client';

/**
 * The per-probe metric families, kept in flat arrays and rendered straight to the text format.
 *
 * prom-client hashes a label set on every observation and formats every series through generic
 * code at scrape time: about 5 µs a series, so 10,000 probes × ~19 series took ~1.9 s a scrape.
 * Here each probe's label text is escaped once, when it is declared, and a scrape is string
 * concatenation. The families still sit in the prom-client Registry (see FastRegistry), so
 * process and scheduler metrics and these come out of one `/metrics`.
 */

interface Entry {
  kind: string;
  /** `probe="…",kind="…"`, escaped once. */
  labels: string;
  success: number;
  lastRun: number;
  lastSuccess: number;
  ok: number;
  failed: number;
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
  valueNames: readonly string[];
  valueLabels: string[];
  values: Float64Array;
}

/** What a family exposes to prom-client: its JSON form, and a fast text form FastRegistry uses. */
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
  render(): string;
  reset(): void;
}

/** Whether a registered metric is one of ours that renders its own text (prom-client types it as its own classes). */
function rendersItself(metric: object): metric is Pick<TextMetric, 'render'> {
  return typeof Reflect.get(metric, 'render') === 'function';
}

/** A prom-client Registry that renders TextMetric families without the generic per-series path. */
export class FastRegistry extends Registry {
  override async metrics(): Promise<string> {
    const parts = await Promise.all(
      this.getMetricsAsArray().map((metric) => (rendersItself(metric) ? metric.render() : this.getSingleMetricAsString(metric.name))),
    );
    return `${parts.join('\n\n')}\n`;
  }
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

/** The probe families: success, duration histogram, runs by outcome, last run/success, named values. */
export class ProbeSeries {
  private readonly entries = new Map<string, Entry>();
  private readonly bucketText: string[];

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
    this.entries.set(id, {
      kind,
      labels,
      success: last?.ok ? 1 : 0,
      lastRun: last ? last.at : 0,
      lastSuccess: last?.ok ? last.at : 0,
      ok: 0,
      failed: 0,
      buckets: new Float64Array(this.bounds.length + 1),
      sum: 0,
      count: 0,
      valueNames,
      valueLabels: valueNames.map((n) => `${labels},name="${escapeLabel(n)}"`),
      values: Float64Array.from(valueNames, (n) => last?.values[n] ?? Number.NaN),
    });
  }

  /** Changes a declared probe's value names, keeping the values it still has. */
  revalue(id: string, valueNames: readonly string[]): void {
    const e = this.entries.get(id);
    if (!e) return;
    const old = new Map(e.valueNames.map((n, i) => [n, e.values[i] ?? Number.NaN]));
    e.valueNames = valueNames;
    e.valueLabels = valueNames.map((n) => `${e.labels},name="${escapeLabel(n)}"`);
    e.values = Float64Array.from(valueNames, (n) => old.get(n) ?? Number.NaN);
  }

  kindOf(id: string): string | undefined {
    return this.entries.get(id)?.kind;
  }

  remove(id: string): void {
    this.entries.delete(id);
  }

  observe(id: string, ok: boolean, seconds: number, at: number, values: Record<string, number>): void {
    const e = this.entries.get(id);
    if (!e) return;
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

  /** The six families, ready to register. */
  families(): TextMetric[] {
    const entries = this.entries;
    // Lines are appended to one string: V8 builds it as a rope, faster than pushing and joining.
    const family = (name: string, help: string, type: TextMetric['type'], lines: (e: Entry) => string): TextMetric => {
      const render = () => {
        let out = `# HELP ${name} ${help}\n# TYPE ${name} ${type}`;
        for (const e of entries.values()) out += lines(e);
        return out;
      };
      return {
        name,
        help,
        type,
        aggregator: 'sum',
        render,
        reset: () => {},
        // The generic form, for registries that are not FastRegistry (and getMetricsAsJSON).
        get: async () => ({
          name,
          help,
          type,
          aggregator: 'sum' as const,
          values: render()
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
    return [
      family(
        'vigil_probe_success',
        'Whether the last run of the probe succeeded (1) or failed (0).',
        'gauge',
        (e) => `\nvigil_probe_success{${e.labels}} ${e.success}`,
      ),
      family('vigil_probe_duration_seconds', 'Duration of probe runs (the attempt that decided the outcome).', 'histogram', (e) => {
        let out = '';
        let cum = 0;
        for (let i = 0; i < bucketText.length; i++) {
          cum += e.buckets[i] ?? 0;
          out += `\nvigil_probe_duration_seconds_bucket{${e.labels},${bucketText[i]}} ${cum}`;
        }
        return `${out}\nvigil_probe_duration_seconds_sum{${e.labels}} ${num(e.sum)}\nvigil_probe_duration_seconds_count{${e.labels}} ${e.count}`;
      }),
      family(
        'vigil_probe_runs_total',
        'Probe runs by outcome.',
        'counter',
        (e) =>
          `\nvigil_probe_runs_total{${e.labels},outcome="success"} ${e.ok}\nvigil_probe_runs_total{${e.labels},outcome="failure"} ${e.failed}`,
      ),
      family(
        'vigil_probe_last_run_timestamp_seconds',
        'When the probe last ran (0 = never).',
        'gauge',
        (e) => `\nvigil_probe_last_run_timestamp_seconds{${e.labels}} ${num(e.lastRun)}`,
      ),
      family(
        'vigil_probe_last_success_timestamp_seconds',
        'When the probe last succeeded (0 = not known).',
        'gauge',
        (e) => `\nvigil_probe_last_success_timestamp_seconds{${e.labels}} ${num(e.lastSuccess)}`,
      ),
      family(
        'vigil_probe_value',
        'A named value of the last run (latency_ms, days_remaining, p95_ms, …); NaN before the first.',
        'gauge',
        (e) => {
          let out = '';
          for (let k = 0; k < e.valueLabels.length; k++)
            out += `\nvigil_probe_value{${e.valueLabels[k]}} ${num(e.values[k] ?? Number.NaN)}`;
          return out;
        },
      ),
    ];
  }
}
