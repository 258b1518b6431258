import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { defaultBaseUrl, linksPointAtLoopback, loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// alerting.baseUrl follows the listen address unless given, and a start that would send people
// links to their own machine says so.

describe('defaultBaseUrl', () => {
  it('names the address vigil listens on', () => {
    expect(defaultBaseUrl('127.0.0.1', 8080)).toBe('http://localhost:8080');
    expect(defaultBaseUrl('::1', 9000)).toBe('http://localhost:9000');
    expect(defaultBaseUrl('0.0.0.0', 8080)).toBe(`http://${hostname()}:8080`);
    expect(defaultBaseUrl('::', 8080)).toBe(`http://${hostname()}:8080`);
    expect(defaultBaseUrl('192.0.2.7', 80)).toBe('http://192.0.2.7:80');
    expect(defaultBaseUrl('2001:db8::7', 80)).toBe('http://[2001:db8::7]:80');
    expect(defaultBaseUrl('vigil.internal', 8080)).toBe('http://vigil.internal:8080');
  });
});

describe('linksPointAtLoopback', () => {
  it('is true only for a loopback baseUrl while listening beyond loopback', () => {
    expect(linksPointAtLoopback('http://localhost:8080', '0.0.0.0')).toBe(true);
    expect(linksPointAtLoopback('http://127.0.0.1:8080/', '10.0.0.5')).toBe(true);
    expect(linksPointAtLoopback('http://[::1]:8080', '::')).toBe(true);
    expect(linksPointAtLoopback('http://localhost:8080', '127.0.0.1')).toBe(false);
    expect(linksPointAtLoopback('https://vigil.example.com', '0.0.0.0')).toBe(false);
  });
});

describe('vigil at start', () => {
  const start = async (host: string, baseUrl?: string) => {
    const ws = workspace({
      'config/default.yaml': `service: { host: "${host}", port: 0 }\nstorage: { sqlite: { path: ":memory:" } }\nbackup: { enabled: false }\n${baseUrl ? `alerting: { baseUrl: "${baseUrl}" }\n` : ''}`,
    });
    const { logger, lines } = memoryLogger('info');
    const app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger });
    try {
      await app.start();
      await app.stop();
    } finally {
      ws.remove();
    }
    return lines.filter((l) => l.level === 'warn' && String(l.msg).startsWith('alerting.baseUrl points at localhost'));
  };

  it('warns when links would point at localhost while listening on every interface', async () => {
    const warned = await start('0.0.0.0', 'http://localhost:8080');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ baseUrl: 'http://localhost:8080', host: '0.0.0.0' });
  });

  it('stays quiet when listening on loopback, or when baseUrl follows the listen address', async () => {
    expect(await start('127.0.0.1', 'http://localhost:8080')).toEqual([]);
    expect(await start('0.0.0.0')).toEqual([]);
  });
});
