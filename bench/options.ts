/** `npm run bench` options: every one with its default and meaning, and their parser. */
import { parseArgs } from 'node:util';

const PHASES = [
  'writes',
  'scrape',
  'load',
  'throughput',
  'soak',
  'alerts',
  'rollups',
  'cluster',
  'flood',
  'object-storage',
  'browser',
  'startup',
] as const;

/** Every option: its default and what it sets. A number option must be a positive number. */
export const OPTIONS = {
  only: { value: 'PHASE', default: 'all', help: `run one phase: ${PHASES.join(', ')}` },
  probes: { value: 'N', default: '60000', help: 'probes of the load phase (vigil on "* * * * *" for a minute)' },
  'throughput-probes': { value: 'N', default: '2000', help: 'probes of the throughput phase (vigil on `every: 1s` for a minute)' },
  'soak-minutes': { value: 'M', default: '10', help: 'length of the soak phase (1,000 probes on `every: 1s`)' },
  small: { value: 'N', default: '10000', help: 'probes of the RSS run' },
  'scrape-probes': { value: 'N,N,…', default: '1000,10000,60000', help: 'probe counts the scrape phase measures /metrics at' },
  seconds: { value: 'S', default: '20', help: 'length of each baseline phase (cluster: at most 15)' },
  'cluster-cap': {
    value: 'CORES',
    default: '0.25',
    help: "each instance's CPU quota in the cluster phase's capped round (as if each ran on a host of its own)",
  },
  'alert-probes': { value: 'N', default: '200', help: 'probes alerting into one Slack channel (alerts)' },
  prefill: { value: 'N', default: '1000000', help: 'old runs pruned during the last alert round' },
  outbox: { value: 'N', default: '5000', help: 'incidents delivered by the outbox worker' },
  'rollup-probes': { value: 'N', default: '100', help: 'probes at 1/min written for the rollups phase' },
  'rollup-days': { value: 'D', default: '30', help: 'days of runs for the rollups phase' },
  'disk-probes': { value: 'N', default: '1000', help: "one-minute probes of the rollups phase's 90-day disk-use figure" },
  'flood-connections': { value: 'N', default: '2000', help: 'keep-alive connections of the flood phase' },
  'flood-seconds': { value: 'S', default: '20', help: 'length of the flood phase (at most 60)' },
  's3-size': { value: 'SIZE', default: '100MB', help: 'object size of the object-storage phase' },
  'startup-probes': { value: 'N', default: '60000', help: 'probes of the startup phase (one file, then 600 files)' },
  'runtime-env': {
    value: 'FILE',
    default: 'runtime.env',
    help: 'environment of the vigil processes (throughput, load, soak, startup): the one vigil ships with; `none` for node as it comes',
  },
} as const;

export type BenchOption = keyof typeof OPTIONS;

/**
 * The `KEY=VALUE` lines of an environment file such as runtime.env, as systemd's EnvironmentFile= and
 * `docker --env-file` read them; other lines (`#` comments, blanks) are not variables.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const lines = text.split('\n').filter((line) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(line));
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

const TEXT: ReadonlySet<BenchOption> = new Set(['only', 's3-size', 'scrape-probes', 'runtime-env']);

export function usage(): string {
  const width = Math.max(...Object.entries(OPTIONS).map(([name, o]) => name.length + o.value.length + 3));
  const lines = Object.entries(OPTIONS).map(([name, o]) => `  ${`--${name} ${o.value}`.padEnd(width)}  ${o.help} (default ${o.default})`);
  return ['usage: npm run bench -- [options]', '', 'options:', ...lines, `  ${'--help'.padEnd(width)}  print this and exit`, ''].join('\n');
}

/** The options given, checked: an unknown option, a missing value or a bad number is an error. */
export function parseBenchArgs(argv: string[]): { help: true } | { help: false; values: Map<BenchOption, string> } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
    },
  });
  if (values.help === true) return { help: true };
  const out = new Map<BenchOption, string>();
  for (const [name, value] of Object.entries(values)) {
    if (name === 'help' || typeof value !== 'string') continue;
    const option = name as BenchOption;
    if (option === 'only' && !(PHASES as readonly string[]).includes(value))
      throw new Error(`--only: one of ${PHASES.join(', ')}, got "${value}"`);
    if (option === 'scrape-probes' && !/^[1-9]\d*(,[1-9]\d*)*$/.test(value))
      throw new Error(`--scrape-probes: expected probe counts separated by commas, got "${value}"`);
    if (!TEXT.has(option) && !(Number(value) > 0)) throw new Error(`--${name}: expected a positive number, got "${value}"`);
    out.set(option, value);
  }
  return { help: false, values: out };
}
