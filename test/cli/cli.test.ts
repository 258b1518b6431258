import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/build.js';
import { target, workspace } from '../helpers/workspace.js';

// `vigil` as a user runs it: the built dist/, from an install that holds the production
// dependencies only. Two checks, because each misses what the other sees:
// - every import in dist/**/*.js (static and dynamic) is a Node built-in, a file in dist/, or a
//   package listed under "dependencies": complete, but it reads the code rather than running it;
// - the commands run from a copy of dist/ and package.json whose node_modules holds only the
//   production dependencies (linked): whatever a command loads from a devDependency fails there.

const ROOT = path.resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const SECRET = 'cli-secret-TOKEN-4f9a2c7e1b';

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(path.join(dir, e.name)) : e.name.endsWith('.js') ? [path.join(dir, e.name)] : [],
  );
}

/** The package a bare specifier names: `@scope/name/x` → `@scope/name`, `name/x` → `name`. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

describe('the vigil command, built and without dev dependencies', () => {
  let install: string;
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;

  beforeAll(async () => {
    ensureBuilt();
    install = mkdtempSync(path.join(tmpdir(), 'vigil-install-'));
    cpSync(path.join(ROOT, 'dist'), path.join(install, 'dist'), { recursive: true });
    cpSync(path.join(ROOT, 'package.json'), path.join(install, 'package.json'));
    for (const name of Object.keys(manifest.dependencies)) {
      const link = path.join(install, 'node_modules', name);
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(path.join(ROOT, 'node_modules', name), link, 'dir');
    }
    upstream = await target((req, res) => {
      // The failing answer echoes the request's credentials, as a careless server does.
      res.end(req.url === '/down' ? `maintenance for ${req.headers.authorization}` : '{"ok":true}');
    });
    ws = workspace({
      'config/default.yaml': 'service: { name: shop }\n',
      'probes/api.yaml': [
        `- id: api\n  kind: http\n  url: ${upstream.url}/health\n  schedule: { every: 1m }\n`,
        `- id: down\n  kind: http\n  url: ${upstream.url}/down\n  schedule: { every: 1m }\n  headers: { authorization: "Bearer \${API_TOKEN}" }\n  expect: { bodyContains: ready }\n`,
        `- id: refused\n  kind: http\n  url: http://127.0.0.1:9/\n  schedule: { every: 1m }\n  timeout: 2s\n  retry: { count: 1, delay: 300ms }\n`,
      ].join(''),
      'extra.yaml': 'service: { port: "eighty" }\n',
    });
  });
  afterAll(async () => {
    await upstream?.close();
    ws?.remove();
    if (install) rmSync(install, { recursive: true, force: true });
  });

  /** Runs the installed copy's bin as a user would, in the workspace; never throws. */
  const vigil = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(install, manifest.bin.vigil!), ...args],
        { cwd: ws.dir, env: { PATH: process.env.PATH, API_TOKEN: SECRET }, timeout: 15_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('imports nothing from devDependencies (every import of dist/ resolved against package.json)', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const files = jsFiles(path.join(ROOT, 'dist'));
    expect(files.length).toBeGreaterThan(100);
    const bad: string[] = [];
    let seen = 0;
    for (const file of files) {
      const code = readFileSync(file, 'utf8');
      const specs = [
        ...code.matchAll(/^\s*(?:import|export)\s[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]/gm),
        ...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
        ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]!);
      for (const spec of specs) {
        seen++;
        if (builtins.has(spec)) continue;
        if (spec.startsWith('.')) {
          const resolved = path.resolve(path.dirname(file), spec);
          if (!files.includes(resolved)) bad.push(`${path.relative(ROOT, file)}: ${spec} is not a built file`);
          continue;
        }
        if (!Object.hasOwn(manifest.dependencies, packageOf(spec))) bad.push(`${path.relative(ROOT, file)}: ${spec} is not a dependency`);
      }
    }
    expect(seen).toBeGreaterThan(500);
    expect(bad).toEqual([]);
    // The check can fail: a dev dependency is caught.
    expect(Object.hasOwn(manifest.dependencies, packageOf('vitest/config'))).toBe(false);
  });

  it('prints usage for --help (instead of starting) and the version from package.json', async () => {
    const help = await vigil('--help');
    expect(help.code).toBe(0);
    for (const cmd of ['check-config', 'run-once PROBE-ID', '--json', 'token', '--config FILE', '--version'])
      expect(help.stdout).toContain(cmd);
    expect((await vigil('-h')).stdout).toBe(help.stdout);
    const version = await vigil('--version');
    expect(version).toMatchObject({ code: 0, stdout: `vigil ${manifest.version}\n` });
  });

  it('refuses unknown commands and options with exit 2', async () => {
    for (const args of [['frobnicate'], ['--frob'], ['--json'], ['token', '--json'], ['check-config', 'extra'], ['run-once']]) {
      const r = await vigil(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^vigil: .+\nusage: vigil --help\n$/);
      expect(r.stdout).toBe('');
    }
  });

  it('checks the config, and a file given with --config', async () => {
    expect(await vigil('check-config')).toMatchObject({ code: 0, stdout: 'config ok: 3 probes from 2 files\n' });
    const bad = await vigil('check-config', '--config', 'extra.yaml');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('extra.yaml: service.port: expected a port number');
  });

  it('runs one probe with the real prober: exit 0 when it passes, 1 when it fails, JSON on request', async () => {
    const ok = await vigil('run-once', 'api');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^api \(http\): ok in \d+ms\n/);
    expect(ok.stdout).toMatch(/\n {2}status +200\n/);

    const down = await vigil('run-once', 'down', '--json');
    expect(down.code, down.stderr).toBe(1);
    const run = JSON.parse(down.stdout) as { probeId: string; ok: boolean; code: string; message: string; trigger: string };
    expect(run).toMatchObject({ probeId: 'down', ok: false, code: 'ASSERTION', trigger: 'manual' });
    // The scheduler's redaction: the body excerpt is shown, the token the server echoed is not.
    expect(run.message).toContain('maintenance for <secret>');
    expect(down.stdout + down.stderr).not.toContain(SECRET);

    const text = await vigil('run-once', 'down');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^down \(http\): FAILED ASSERTION in \d+ms: /);
    expect(text.stdout).not.toContain(SECRET);

    // A retry waits on a timer that alone does not keep Node alive: the command still waits for it
    // (it exited 13, "unsettled top-level await", with nothing printed).
    const retried = await vigil('run-once', 'refused');
    expect(retried.code, retried.stderr).toBe(1);
    expect(retried.stdout).toMatch(/^refused \(http\): FAILED CONNECT in \d+ms: .*\n {2}attempts: 2\n/);
  });

  it('names an unknown probe id (own keys only) and an invalid config, with exit 2', async () => {
    for (const id of ['nope', '__proto__', 'constructor']) {
      const r = await vigil('run-once', id);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`vigil: run-once: no probe "${id}"; the config has: api, down, refused\n`);
    }
    const bad = await vigil('run-once', 'api', '--config', 'extra.yaml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('extra.yaml: service.port');
  });

  it("is on the container's PATH: the Dockerfile's wrapper runs the built command", async () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const m = /RUN printf '([^']+)' > \/usr\/local\/bin\/vigil \\\n && chmod 755 \/usr\/local\/bin\/vigil/.exec(dockerfile);
    expect(m, 'a RUN line writing /usr/local/bin/vigil').not.toBeNull();
    // The wrapper as printf writes it, pointed at this install instead of /app.
    const script = m![1]!.replaceAll('\\n', '\n').replace('/app/dist/main.js', path.join(install, 'dist/main.js'));
    const wrapper = path.join(install, 'vigil');
    writeFileSync(wrapper, script, { mode: 0o755 });
    const out = await new Promise<string>((resolve, reject) =>
      execFile(wrapper, ['--version'], { env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` } }, (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    expect(out).toBe(`vigil ${manifest.version}\n`);
  });

  it('is what package.json runs: bin and the check-config script use the build', () => {
    expect(manifest.bin.vigil).toBe('dist/main.js');
    expect(readFileSync(path.join(ROOT, 'dist/main.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(manifest.scripts['check-config']).not.toContain('tsx');
  });
});
