import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTIONS, parseBenchArgs } from '../../bench/options.js';

// `npm run bench -- --help` prints the options; an unknown option or a bad value is an error.

const ROOT = path.resolve(import.meta.dirname, '../..');

const bench = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    ),
  );

describe('npm run bench options', () => {
  it('prints every option with its default for --help, and runs nothing', async () => {
    const r = await bench('--help');
    expect(r.code, r.stderr).toBe(0);
    for (const [name, o] of Object.entries(OPTIONS)) expect(r.stdout).toContain(`--${name} ${o.value}`);
    expect(r.stdout).not.toContain('##');
  });

  it('refuses an unknown option with exit 2, before running anything', async () => {
    const r = await bench('--probe', '10');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bench: Unknown option '--probe'/);
    expect(r.stdout).toBe('');
  });

  it('refuses a --runtime-env file it cannot read with exit 2, before running anything', async () => {
    const r = await bench('--runtime-env', 'no-such.env', '--only', 'writes');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bench: --runtime-env: ENOENT: no such file or directory, open '.*no-such\.env'/);
    expect(r.stdout).toBe('');
  });

  it('checks values', () => {
    expect(() => parseBenchArgs(['--probes'])).toThrow(/argument missing/);
    expect(() => parseBenchArgs(['--probes', 'abc'])).toThrow('--probes: expected a positive number, got "abc"');
    expect(() => parseBenchArgs(['--only', 'everything'])).toThrow(/--only: one of writes, scrape/);
    expect(() => parseBenchArgs(['stray'])).toThrow();
    expect(() => parseBenchArgs(['--scrape-probes', '1000,,60000'])).toThrow(
      '--scrape-probes: expected probe counts separated by commas, got "1000,,60000"',
    );
    const sizes = parseBenchArgs(['--scrape-probes', '1000,60000']);
    expect(sizes.help ? undefined : sizes.values.get('scrape-probes')).toBe('1000,60000');
    const ok = parseBenchArgs(['--only', 'rollups', '--rollup-days', '7']);
    expect(ok.help ? undefined : [...ok.values]).toEqual([
      ['only', 'rollups'],
      ['rollup-days', '7'],
    ]);
  });

  it('documents exactly the options the benchmarks read', () => {
    const read = [...readFileSync(path.join(ROOT, 'bench/run.ts'), 'utf8').matchAll(/\bargs\.get\('([^']+)'\)/g)].map((m) => m[1]);
    expect(new Set(read)).toEqual(new Set(Object.keys(OPTIONS)));
  });
});
