import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { lazy } from '../../src/lib/lazy.js';
import { ensureBuilt } from '../helpers/build.js';

// The clients of the kinds a config may never use load at their kind's first run (src/lib/lazy.ts):
// importing them with the app cost ~32 MB of RSS and ~0.7 s of start-up. An eager import added later
// would cost that again, silently; this catches it.

const APP = pathToFileURL(path.resolve(import.meta.dirname, '../../dist/app.js')).href;
const LAZY = ['redis', '@redis/client', 'amqplib', 'mysql2', 'ws', '@aws-sdk/client-s3'];

/** The packages of LAZY in Node's module cache after importing the app, then after importing them. */
const SCRIPT = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const loaded = () => ${JSON.stringify(LAZY)}.filter((name) => Object.keys(cache).some((k) => k.includes('/node_modules/' + name + '/')));
await import(${JSON.stringify(APP)});
const withApp = loaded();
for (const name of ${JSON.stringify(LAZY)}) await import(name);
process.stdout.write(JSON.stringify({ withApp, after: loaded() }));
`;

describe('lazy clients', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('importing the app loads none of the optional clients; importing them shows up where this looks', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      encoding: 'utf8',
    });
    const { withApp, after } = JSON.parse(out) as { withApp: string[]; after: string[] };
    expect(withApp).toEqual([]);
    // The check itself can see each package: without this, an empty list would prove nothing.
    expect(after).toEqual(LAZY);
  }, 60_000);

  it('loads once, at the first call, and shares the promise', async () => {
    let loads = 0;
    const get = lazy(async () => ++loads);
    expect(loads).toBe(0);
    const [a, b] = await Promise.all([get(), get()]);
    expect([a, b, await get(), loads]).toEqual([1, 1, 1, 1]);
  });
});
