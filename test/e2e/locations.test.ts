import { afterEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

const PROBES = ['eu', 'us', 'everywhere']
  .map(
    (id) =>
      `- id: ${id}\n  kind: http\n  url: http://127.0.0.1:9/${id}\n  schedule: "* * * * *"\n${id === 'everywhere' ? '' : `  locations: [${id === 'eu' ? 'eu-west' : 'us-east'}]\n`}`,
  )
  .join('');

describe('locations', () => {
  let ws: ReturnType<typeof workspace> | undefined;
  let app: App | undefined;
  afterEach(async () => {
    await app?.server.close();
    await app?.store.close();
    ws?.remove();
  });

  const build = (config: string, env: Record<string, string> = {}) => {
    ws = workspace({
      'config/default.yaml': `service: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: { path: ':memory:' } }\nbackup: { enabled: false }\n${config}`,
      'probes/p.yaml': PROBES,
    });
    const cfg = loadConfig({ cwd: ws.dir, env });
    app = createApp({ config: cfg, logger: memoryLogger().logger, clock: new ManualClock(Date.UTC(2026, 10, 26)) });
    return { app, cfg };
  };
  const series = async (a: App) =>
    ((await a.server.inject({ url: '/metrics' })).body.match(/^vigil_probe_success\{[^}]*\}/gm) ?? []).sort();

  it('runs a probe only where it is meant to, and labels every series with the location', async () => {
    const { app: eu, cfg } = build('', { VIGIL_LOCATION: 'eu-west' });
    expect(cfg.service.service.location).toBe('eu-west');
    await eu.start();
    expect(await series(eu)).toEqual([
      'vigil_probe_success{probe="eu",kind="http",location="eu-west"}',
      'vigil_probe_success{probe="everywhere",kind="http",location="eu-west"}',
    ]);
    // Runs carry the location they ran from.
    await eu.scheduler.runNow('eu');
    await eu.store.flush();
    expect((await eu.store.runs({ probeId: 'eu' }))[0]?.location).toBe('eu-west');
    // The API still lists every configured probe.
    expect((await eu.server.inject({ url: '/api/v1/probes' })).json().probes).toHaveLength(3);
    await eu.stop();
    app = undefined;
  });

  it('without a location runs only the probes that name none, and adds no label', async () => {
    const { app: plain } = build('');
    await plain.start();
    expect(await series(plain)).toEqual(['vigil_probe_success{probe="everywhere",kind="http"}']);
    await plain.stop();
    app = undefined;
  });

  it('refuses a malformed location, naming where it came from', () => {
    ws = workspace({ 'config/default.yaml': 'service: { location: "EU West" }\n', 'probes/p.yaml': PROBES });
    const dir = ws.dir;
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ cwd: dir, env: {} });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        'config/default.yaml: service.location: expected a location name of lower-case letters, digits, ".", "_" or "-", got "EU West"',
      ]);
    }
  });
});
