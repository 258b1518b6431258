import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { OptionalKind, type TSchema } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, type LoadOptions, loadConfig } from '../../src/config/index.js';
import { probers } from '../../src/probers/index.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const casesDir = path.join(repoRoot, 'test/fixtures/config');
const cases = readdirSync(casesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

/** The problems a load reports; fails the test when it loads or throws anything else. */
function problemsOf(opts: LoadOptions): readonly string[] {
  try {
    loadConfig(opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected, but it loaded');
}

function caseEnv(dir: string): Record<string, string> {
  const file = path.join(dir, 'env.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
}

function expectedLines(dir: string): string[] {
  const kinds = Object.keys(probers).join(', ');
  return readFileSync(path.join(dir, 'expected.txt'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('{kinds}').join(kinds));
}

describe('invalid config fixtures (test/fixtures/config/<case>/expected.txt)', () => {
  it('has a case for each kind of mistake', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    for (const name of cases) expect(existsSync(path.join(casesDir, name, 'expected.txt')), `${name}/expected.txt`).toBe(true);
  });

  it.each(cases)('%s: reports exactly the expected lines', (name) => {
    const cwd = path.join(casesDir, name);
    expect(problemsOf({ cwd, env: caseEnv(cwd) })).toEqual(expectedLines(cwd));
  });

  it('reports several problems in the same order every time', () => {
    const cwd = path.join(casesDir, 'several-problems');
    const first = problemsOf({ cwd, env: {} });
    expect(first.length).toBeGreaterThanOrEqual(10);
    expect(problemsOf({ cwd, env: {} })).toEqual(first);
  });

  it('throws a ConfigError with a stable code and every line in its message', () => {
    const cwd = path.join(casesDir, 'several-problems');
    let error: unknown;
    try {
      loadConfig({ cwd, env: {} });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.code).toBe('VIGIL_ERR_CONFIG');
    for (const line of e.problems) expect(e.message).toContain(line);
  });
});

/** A scratch config tree: `write('config/default.yaml', text)`, then load it with cwd = the tree. */
function scratch() {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-'));
  const write = (file: string, text: string) => {
    const abs = path.join(dir, file);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, text);
    return abs;
  };
  const load = (env: Record<string, string> = {}) => loadConfig({ cwd: dir, env });
  return { dir, write, load };
}

const API_PROBE = `
- id: api-health
  kind: http
  url: http://127.0.0.1:8080/health
  schedule: "* * * * *"        # cron, 5 or 6 fields; or  every: 30s
  timeout: 10s
  retry: { count: 1, delay: 10s }   # confirm a failure before recording it as one
  expect:
    status: 200                 # or a list
    maxLatency: 2s
    bodyContains: ok            # optional
  labels: { team: core }
`;

const DEFAULTS = {
  service: { name: 'vigil', host: '0.0.0.0', port: 8080, logLevel: 'info', shutdownTimeout: '10s', heapHeadroom: '32MiB' },
  probes: { dir: './probes' },
  scheduler: { spread: true, maxConcurrent: 2000 },
  storage: {
    sqlite: { path: './data/vigil.db' },
    retention: { runs: '3d', failedRuns: '30d', audit: '400d' },
    batch: { maxRows: 5000, interval: '200ms' },
  },
  alerting: {
    // No baseUrl given: the listen address, all interfaces on 8080, named by this machine's name.
    baseUrl: `http://${hostname()}:8080`,
    sweepInterval: '5s',
    delivery: { maxAge: '24h', timeout: '10s', minBackoff: '1s', maxBackoff: '5m', concurrency: 4, pollInterval: '1s' },
    flapping: { start: 0.5, stop: 0.25 },
    maintenance: [],
  },
  people: {},
  schedules: {},
  oncall: { heartbeatInterval: '1m' },
  interactions: { linkTtl: '24h' },
  escalation: {},
  channels: {},
  auth: { tokens: [], reads: 'public', metrics: 'public', rateLimit: { perMinute: 600, linksPerMinute: 30, hold: '1s' } },
  cluster: { leaseTtl: '15s', feedInterval: '500ms' },
  backup: { enabled: true, dir: './data/backups', interval: '1h', firstAfter: '1m', keep: 24 },
  report: {
    days: 30,
    targets: {
      p95: '5s',
      errorRate: '5%',
      uptime: '99.9%',
      logIngestion: '30s',
      rto: '4h',
      rpo: '1h',
      drillMaxAge: '7d',
      tlsMinDays: 14,
      dnsMaxTtl: '300s',
      dnsPropagation: '5m',
      loadP95: '5s',
      loadErrorRate: '5%',
      mtta: '15m',
    },
    attestations: {},
    attestationMaxAge: '90d',
  },
  metrics: { durationBuckets: [0.05, 0.25, 1, 5, 30] },
};

/** Every dotted key path of an object schema, nested objects included. */
function schemaPaths(schema: TSchema, prefix = ''): string[] {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props) return [];
  // Optional keys (alerting.dashboardUrl) have no default: they are absent until set.
  return Object.entries(props)
    .filter(([, s]) => (s as unknown as Record<symbol, unknown>)[OptionalKind] !== 'Optional')
    .flatMap(([k, s]) => [`${prefix}${k}`, ...schemaPaths(s, `${prefix}${k}.`)]);
}

function valueAt(obj: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((cur, k) => (cur as Record<string, unknown> | undefined)?.[k], obj);
}

describe('loadConfig', () => {
  const dirs: string[] = [];
  const tree = () => {
    const t = scratch();
    dirs.push(t.dir);
    return t;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('fills every key of the schema with its default from an empty default.yaml', () => {
    const t = tree();
    t.write('config/default.yaml', '');
    mkdirSync(path.join(t.dir, 'probes'));
    const config = t.load();
    expect(config.service).toEqual(DEFAULTS);
    for (const key of schemaPaths(ConfigSchema)) expect(valueAt(config.service, key), key).toBeDefined();
    expect(config.probes).toEqual([]);
  });

  it('ships a config/default.yaml that states exactly the schema defaults', () => {
    const config = loadConfig({ cwd: repoRoot, env: {} });
    expect(config.service).toEqual(DEFAULTS);
  });

  it('loads the issue definition as written, with the common fields defaulted', () => {
    const t = tree();
    t.write('config/default.yaml', '');
    t.write('probes/api.yaml', API_PROBE);
    const [probe] = t.load().probes;
    expect(probe).toMatchObject({
      id: 'api-health',
      kind: 'http',
      schedule: '* * * * *',
      timeout: '10s',
      retry: { count: 1, delay: '10s' },
      expect: { status: 200, maxLatency: '2s', bodyContains: 'ok' },
      labels: { team: 'core' },
      method: 'GET',
    });
  });

  it('reads only top-level probes/*.yaml and *.yml, in file name order', () => {
    const t = tree();
    t.write('config/default.yaml', '');
    t.write('probes/b.yml', '- { id: b, kind: http, url: "http://127.0.0.1/", schedule: { every: 30s } }\n');
    t.write('probes/a.yaml', '- { id: a, kind: http, url: "http://127.0.0.1/", schedule: "*/5 * * * * *" }\n');
    t.write('probes/examples/broken.yaml', '- { id: nope, kind: nope }\n');
    t.write('probes/notes.txt', 'not a definition');
    t.write('probes/empty.yaml', '# nothing yet\n');
    const config = t.load();
    expect(config.probes.map((p) => p.id)).toEqual(['a', 'b']);
    expect(config.files.map((f) => path.relative(t.dir, f))).toEqual([
      'config/default.yaml',
      'probes/a.yaml',
      'probes/b.yml',
      'probes/empty.yaml',
    ]);
  });

  it('takes the probes folder from probes.dir, relative to cwd', () => {
    const t = tree();
    t.write('config/default.yaml', 'probes:\n  dir: ./checks\n');
    t.write('checks/api.yaml', API_PROBE);
    const config = t.load();
    expect(config.probes.map((p) => p.id)).toEqual(['api-health']);
    expect(config.baseDir).toBe(t.dir);
  });

  describe('layers', () => {
    const layered = () => {
      const t = tree();
      t.write(
        'config/default.yaml',
        'service:\n  name: vigil\n  logLevel: info\n  port: 8080\nmetrics:\n  durationBuckets: [0.05, 0.25, 1, 5, 30]\n',
      );
      t.write('config/production.yaml', 'service:\n  logLevel: warn\nmetrics:\n  durationBuckets: [1, 10]\n');
      t.write('extra/override.yaml', 'service:\n  logLevel: error\nstorage:\n  sqlite:\n    path: /data/x.db\n');
      mkdirSync(path.join(t.dir, 'probes'));
      return t;
    };

    it('VIGIL_ENV=production merges production.yaml over default: objects merge, lists replace', () => {
      const t = layered();
      const config = t.load({ VIGIL_ENV: 'production' });
      expect(config.service.service).toMatchObject({ name: 'vigil', logLevel: 'warn', port: 8080 });
      expect(config.service.metrics.durationBuckets).toEqual([1, 10]);
      expect(config.files.map((f) => path.relative(t.dir, f))).toEqual(['config/default.yaml', 'config/production.yaml']);
    });

    it('without VIGIL_ENV only default.yaml is read', () => {
      const config = layered().load();
      expect(config.service.service.logLevel).toBe('info');
      expect(config.service.metrics.durationBuckets).toEqual([0.05, 0.25, 1, 5, 30]);
    });

    it('VIGIL_CONFIG names another file, relative to cwd, merged last', () => {
      const t = layered();
      const config = t.load({ VIGIL_ENV: 'production', VIGIL_CONFIG: 'extra/override.yaml' });
      expect(config.service.service.logLevel).toBe('error');
      expect(config.service.metrics.durationBuckets).toEqual([1, 10]);
      expect(config.service.storage.sqlite.path).toBe('/data/x.db');
      expect(config.service.storage.retention.runs).toBe('3d');
      expect(config.files.at(-1)).toBe(path.join(t.dir, 'extra/override.yaml'));
    });

    it('a problem in a later layer is reported against that layer', () => {
      const t = layered();
      t.write('config/production.yaml', 'service:\n  logLevel: loud\n');
      expect(problemsOf({ cwd: t.dir, env: { VIGIL_ENV: 'production' } })).toEqual([
        'config/production.yaml: service.logLevel: expected one of fatal, error, warn, info, debug, trace, got "loud"',
      ]);
    });

    it('a list item is reported against the layer the list came from', () => {
      const t = layered();
      t.write('config/production.yaml', 'metrics:\n  durationBuckets: [1, -1]\n');
      expect(problemsOf({ cwd: t.dir, env: { VIGIL_ENV: 'production' } })).toEqual([
        'config/production.yaml: metrics.durationBuckets[1]: expected a number greater than 0, got -1',
      ]);
    });

    it('VIGIL_CONFIG naming a missing file is a problem', () => {
      const t = layered();
      expect(problemsOf({ cwd: t.dir, env: { VIGIL_CONFIG: 'extra/nope.yaml' } })).toEqual([
        'extra/nope.yaml: (file): expected the config file VIGIL_CONFIG names; it does not exist',
      ]);
    });

    it('VIGIL_ENV must be a name, not a path', () => {
      const t = layered();
      expect(problemsOf({ cwd: t.dir, env: { VIGIL_ENV: '../extra/override' } })).toEqual([
        '(environment): VIGIL_ENV: expected an environment name such as production, got "../extra/override"',
      ]);
    });

    it('a missing default.yaml is a problem', () => {
      const t = tree();
      mkdirSync(path.join(t.dir, 'probes'));
      expect(problemsOf({ cwd: t.dir, env: {} })).toEqual([
        'config/default.yaml: (file): expected the default config file; it does not exist',
      ]);
    });
  });

  describe('PORT', () => {
    it('overrides the port of every layer', () => {
      const t = tree();
      t.write('config/default.yaml', 'service:\n  port: 8080\n');
      t.write('config/production.yaml', 'service:\n  port: 9000\n');
      mkdirSync(path.join(t.dir, 'probes'));
      expect(t.load({ PORT: '3000' }).service.service.port).toBe(3000);
      expect(t.load({ PORT: '3000', VIGIL_ENV: 'production' }).service.service.port).toBe(3000);
      expect(t.load({ PORT: '' }).service.service.port).toBe(8080);
    });

    it.each(['eighty', '-1', '65536', '80.5', '0x50', ' '])('rejects PORT=%j', (port) => {
      const t = tree();
      t.write('config/default.yaml', '');
      mkdirSync(path.join(t.dir, 'probes'));
      expect(problemsOf({ cwd: t.dir, env: { PORT: port } })).toEqual([
        `(environment): PORT: expected a port number 0-65535, got ${JSON.stringify(port)}`,
      ]);
    });
  });

  describe('HOST', () => {
    it('sets the listen address as PORT sets the port, and alerting.baseUrl follows both unless given', () => {
      const t = tree();
      t.write('config/default.yaml', 'service:\n  host: 0.0.0.0\n');
      t.write('config/given.yaml', 'alerting:\n  baseUrl: https://vigil.example.com\n');
      mkdirSync(path.join(t.dir, 'probes'));
      const local = t.load({ HOST: '127.0.0.1', PORT: '3000' }).service;
      expect(local.service).toMatchObject({ host: '127.0.0.1', port: 3000 });
      expect(local.alerting.baseUrl).toBe('http://localhost:3000');
      expect(t.load({ HOST: '10.1.2.3' }).service.alerting.baseUrl).toBe('http://10.1.2.3:8080');
      expect(t.load({ HOST: '::' }).service.alerting.baseUrl).toBe(`http://${hostname()}:8080`);
      expect(t.load({ HOST: 'fd00::5' }).service.alerting.baseUrl).toBe('http://[fd00::5]:8080');
      expect(t.load({ HOST: '' }).service.service.host).toBe('0.0.0.0');
      expect(t.load({ HOST: '127.0.0.1', VIGIL_CONFIG: 'config/given.yaml' }).service.alerting.baseUrl).toBe('https://vigil.example.com');
    });

    it.each(['0.0.0.0 ', 'http://x', 'a/b'])('rejects HOST=%j', (host) => {
      const t = tree();
      t.write('config/default.yaml', '');
      mkdirSync(path.join(t.dir, 'probes'));
      expect(problemsOf({ cwd: t.dir, env: { HOST: host } })).toEqual([
        `(environment): HOST: expected a listen address such as 0.0.0.0, 127.0.0.1 or ::, got ${JSON.stringify(host)}`,
      ]);
    });
  });

  describe('references', () => {
    const withName = (name: string, env: Record<string, string>) => {
      const t = tree();
      t.write('config/default.yaml', `service:\n  name: '${name}'\n`);
      mkdirSync(path.join(t.dir, 'probes'));
      return { t, config: t.load(env) };
    };

    it('${NAME} reads an environment variable, also inside a longer string', () => {
      expect(withName('vigil-${REGION}', { REGION: 'eu-west' }).config.service.service.name).toBe('vigil-eu-west');
    });

    it('${NAME:-default} falls back when the variable is unset or empty', () => {
      expect(withName('${REGION:-local}', {}).config.service.service.name).toBe('local');
      expect(withName('${REGION:-local}', { REGION: '' }).config.service.service.name).toBe('local');
      expect(withName('${REGION:-local}', { REGION: 'eu' }).config.service.service.name).toBe('eu');
      expect(withName('${REGION:-a:-b}', {}).config.service.service.name).toBe('a:-b');
    });

    it('$${literal} is a literal ${literal}', () => {
      expect(withName('cost $${literal} and ${X}', { X: 'x' }).config.service.service.name).toBe('cost ${literal} and x');
    });

    it('${file:PATH} reads a file with its trailing newline trimmed; a relative path resolves against cwd', () => {
      const t = tree();
      const abs = t.write('secrets/token', 'tok-123456\n');
      t.write('secrets/multi', 'line one\nline two\n\n');
      t.write('config/default.yaml', '');
      t.write(
        'probes/api.yaml',
        `- id: api\n  kind: http\n  url: http://127.0.0.1/\n  schedule: "* * * * *"\n  headers:\n    authorization: Bearer \${file:${abs}}\n    x-relative: \${file:secrets/token}\n    x-multi: \${file:secrets/multi}\n`,
      );
      const [probe] = t.load().probes;
      expect(probe?.kind === 'http' && probe.headers).toEqual({
        authorization: 'Bearer tok-123456',
        'x-relative': 'tok-123456',
        'x-multi': 'line one\nline two\n',
      });
    });

    it('an ill-formed reference is a problem', () => {
      const t = tree();
      t.write('config/default.yaml', "service:\n  name: '${not a name}'\n");
      mkdirSync(path.join(t.dir, 'probes'));
      expect(problemsOf({ cwd: t.dir, env: {} })).toEqual([
        'config/default.yaml: service.name: expected ${NAME}, ${NAME:-default} or ${file:PATH}, got ${not a name}',
      ]);
    });

    it('values from the environment or a file are secrets; plain numbers, booleans and :- defaults are not', () => {
      const t = tree();
      const file = t.write('run/secret', 'from-a-file\n');
      t.write(
        'config/default.yaml',
        `service:\n  name: \${NAME}\n  port: \${PORT_IN_YAML}\n  host: \${HOST:-127.0.0.1}\nscheduler:\n  spread: \${SPREAD}\nstorage:\n  sqlite:\n    path: \${file:${file}}\n`,
      );
      mkdirSync(path.join(t.dir, 'probes'));
      const config = t.load({ NAME: 'team-secret-name', PORT_IN_YAML: '9090', SPREAD: 'false' });
      expect(config.service.service).toMatchObject({ name: 'team-secret-name', port: 9090, host: '127.0.0.1' });
      expect(config.service.scheduler.spread).toBe(false);
      expect([...config.secrets].sort()).toEqual(['from-a-file', 'team-secret-name']);
    });

    it('references in probe files are resolved and their values kept as secrets', () => {
      const t = tree();
      t.write('config/default.yaml', '');
      t.write(
        'probes/api.yaml',
        '- id: api\n  kind: http\n  url: https://${API_HOST:-api.example.com}/health\n  schedule: "* * * * *"\n  headers:\n    authorization: Bearer ${API_TOKEN}\n',
      );
      const config = t.load({ API_TOKEN: 'tok-abcdef' });
      const [probe] = config.probes;
      expect(probe?.kind === 'http' && probe.url).toBe('https://api.example.com/health');
      expect(probe?.kind === 'http' && probe.headers.authorization).toBe('Bearer tok-abcdef');
      expect([...config.secrets]).toEqual(['tok-abcdef']);
    });
  });

  it('refuses a config or probe file past 8 MiB, naming the file and the cap, before parsing it', () => {
    const t = tree();
    // Valid YAML, just big: 1 KiB comment lines, one past the cap (a 50 MB one once blocked a reload for 5.7 s).
    const big = `# ${'x'.repeat(1021)}\n`.repeat(8 * 1024 + 1);
    t.write('config/default.yaml', big);
    t.write('probes/api.yaml', `${API_PROBE}${big}`);
    const started = performance.now();
    expect(problemsOf({ cwd: t.dir, env: {} })).toEqual([
      'config/default.yaml: (file): expected the default config file; it is larger than 8 MiB, the cap on files vigil reads',
      'probes/api.yaml: (file): expected a readable YAML file; it is larger than 8 MiB, the cap on files vigil reads',
    ]);
    expect(performance.now() - started).toBeLessThan(1_000);
    // Just under the cap still loads.
    t.write('config/default.yaml', `# ${'x'.repeat(1021)}\n`.repeat(8 * 1024 - 1));
    t.write('probes/api.yaml', API_PROBE);
    expect(t.load().probes).toHaveLength(1);
  });

  it.each(['__proto__', 'constructor', 'hasOwnProperty', 'toString'])(
    'refuses %s as a reference to a channel, person or schedule nobody defined',
    (id) => {
      const t = tree();
      t.write(
        'config/default.yaml',
        [
          'people: { alice: { name: Alice, email: alice@example.com } }',
          'schedules:',
          `  primary: { timezone: UTC, layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-11-02, participants: [alice, ${id}] }] }`,
          'channels: { hook: { type: webhook, url: "http://127.0.0.1:9/" } }',
          `escalation: { main: { steps: [{ after: 0s, notify: ["person:${id}", "oncall:${id}", ${id}] }], fallback: [${id}] } }`,
          '',
        ].join('\n'),
      );
      t.write('probes/api.yaml', API_PROBE.replace('schedule: "* * * * *"', `schedule: "* * * * *"\n  alert: { channels: [hook, ${id}] }`));
      const problems = problemsOf({ cwd: t.dir, env: {} });
      for (const at of ['participants', 'notify[0]', 'notify[1]', 'notify[2]', 'fallback[0]', 'alert.channels[1]']) {
        expect(
          problems.some((p) => p.includes(at) && p.includes(id)),
          `${at} in\n${problems.join('\n')}`,
        ).toBe(true);
      }
    },
  );

  it('returns a deeply frozen config', () => {
    const t = tree();
    t.write('config/default.yaml', '');
    t.write('probes/api.yaml', API_PROBE.replace('team: core', 'team: "${TEAM}"'));
    const config = t.load({ TEAM: 'core-team' });
    const probe = config.probes[0] as (typeof config.probes)[number] & { expect: object; labels: object };
    for (const v of [
      config,
      config.service,
      config.service.service,
      config.service.metrics.durationBuckets,
      config.probes,
      probe,
      probe.expect,
      probe.labels,
      config.files,
    ]) {
      expect(Object.isFrozen(v)).toBe(true);
    }
    expect(() => {
      (config.service.service as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.probes as unknown[]).push({})).toThrow(TypeError);
    expect(() => (config.secrets as Set<string>).add('x')).toThrow(TypeError);
    expect(() => (config.secrets as Set<string>).delete('core-team')).toThrow(TypeError);
    expect(() => (config.secrets as Set<string>).clear()).toThrow(TypeError);
    expect([...config.secrets]).toEqual(['core-team']);
    // Freezing the result must not freeze the schema's own defaults, which the next load starts from.
    expect(Object.isFrozen((ConfigSchema.properties.metrics.properties.durationBuckets as { default: unknown[] }).default)).toBe(false);
  });

  it('shares equal plain parts between definitions, and only equal ones', () => {
    const t = tree();
    t.write('config/default.yaml', '');
    const item = (id: string, extra = '') => `- { id: ${id}, kind: http, url: "http://127.0.0.1/", schedule: "* * * * *"${extra} }\n`;
    t.write(
      'probes/a.yaml',
      item('a') +
        item('b') +
        item('c', ', retry: { count: 2 }, labels: { team: core }') +
        item('d', ', labels: { team: core }') +
        item('e', ', labels: { team: edge }') +
        // Equal to d's again, after another: the first such part, not a copy.
        item('f', ', labels: { team: core }') +
        // Same keys and values in another order: another JSON text, not shared.
        item('g', ', labels: { team: core, site: x }') +
        item('h', ', labels: { site: x, team: core }'),
    );
    const [a, b, c, d, e, f, g, h] = t.load().probes as unknown as Array<{
      retry: object;
      labels: Record<string, unknown>;
      expect: object;
    }>;
    expect(f?.labels).toBe(c?.labels);
    expect(Object.keys(h?.labels ?? {})).toEqual(['site', 'team']);
    expect(h?.labels).not.toBe(g?.labels);
    expect(b?.retry).toBe(a?.retry);
    expect(b?.expect).toBe(a?.expect);
    expect(b?.labels).toBe(a?.labels);
    expect(c?.retry).not.toBe(a?.retry);
    expect(c?.retry).toEqual({ count: 2, delay: '10s' });
    expect(d?.labels).toBe(c?.labels);
    expect(e?.labels).toEqual({ team: 'edge' });
    expect(e?.labels).not.toBe(d?.labels);
  });

  describe('the repository config', () => {
    it.each([{}, { VIGIL_ENV: 'production' }, { VIGIL_ENV: 'staging' }])('loads with no problems (env %j)', (env) => {
      const config = loadConfig({ cwd: repoRoot, env });
      expect(config.probes.length).toBeGreaterThan(0);
      expect(config.probes.map((p) => p.id)).toContain('vigil-health');
      // probes/examples/ may name real hosts: it is documentation, never loaded.
      for (const f of config.files) expect(path.relative(repoRoot, f)).not.toMatch(/^probes\/examples\//);
    });
  });

  describe('npm run check-config', () => {
    const checkConfig = (cwd: string, env: Record<string, string> = {}) =>
      spawnSync('node', ['--import', 'tsx', path.join(repoRoot, 'src/cli/check-config.ts')], {
        cwd,
        env: { PATH: process.env.PATH ?? '', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });

    it('exits 0 on the repository', () => {
      const run = checkConfig(repoRoot);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^config ok: \d+ probes from \d+ files\n$/);
    });

    it('exits 1 with the problem lines on stderr for a broken config', () => {
      const cwd = path.join(casesDir, 'several-problems');
      const run = checkConfig(cwd);
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr.split('\n').filter(Boolean)).toEqual(expectedLines(cwd));
    });

    it('reads the environment it runs in', () => {
      const cwd = path.join(casesDir, 'vigil-env-missing-file');
      expect(checkConfig(cwd).status).toBe(0);
      expect(checkConfig(cwd, caseEnv(cwd)).status).toBe(1);
    });
  });
});
