import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ValidationSeverity, validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseEnvFile } from '../../bench/options.js';

// The Dockerfile linted and held against what it must agree with (package.json, the default
// config, .dockerignore, docker-compose.yml), in milliseconds; image.test.ts builds and runs it. Each check returns its problems as lines; each is
// run on the real files (no problems) and on a broken variant (the exact problem it must name).

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

const DOCKERFILE = read('Dockerfile');
const DOCKERIGNORE = read('.dockerignore');
const COMPOSE = parse(read('docker-compose.yml')) as Compose;

interface PackageJson {
  version: string;
  description: string;
  license?: string;
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
}
const PKG = JSON.parse(read('package.json')) as PackageJson;

interface DefaultConfig {
  service: { port: number; shutdownTimeout: string };
  storage: { sqlite: { path: string } };
  backup?: { dir?: string };
}
const CONFIG = parse(read('config/default.yaml')) as DefaultConfig;

interface ComposeService {
  build?: string | { context?: string; dockerfile?: string };
  ports?: Array<string | { target: number }>;
  volumes?: Array<string | { target: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, ComposeService>;
}

// ---- a small Dockerfile reader: enough for the instructions this project uses ----

/** One instruction: its keyword in upper case, its arguments with continuations joined, its first line. */
interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
/** A build stage: its base image, its `AS` name, its instructions after FROM. */
interface Stage {
  image: string;
  name: string | undefined;
  body: Instruction[];
}

function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current: { text: string; line: number } | undefined;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    // Comment lines are dropped, also inside a continuation (as Docker does).
    if (/^\s*#/.test(line)) continue;
    if (current === undefined) {
      if (line.trim() === '') continue;
      current = { text: '', line: i + 1 };
    }
    const continued = /\\\s*$/.test(line);
    current.text += `${line.replace(/\\\s*$/, '')} `;
    if (continued) continue;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(current.text.trim()) as RegExpExecArray;
    out.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: current.line });
    current = undefined;
  }
  return out;
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.keyword === 'FROM') {
      const w = words(ins.args).filter((x) => !x.startsWith('--'));
      stages.push({ image: w[0] ?? '', name: w[1]?.toUpperCase() === 'AS' ? w[2] : undefined, body: [] });
    } else {
      stages.at(-1)?.body.push(ins);
    }
  }
  return stages;
}

/** Shell-like words: whitespace separates, quotes group and are removed (`k="a b"` is `k=a b`). */
function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (const ch of s) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** The JSON (exec) form's list, or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  return args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : undefined;
}

/** Leading `--name=value` flags, then the rest. */
function flagsOf(list: string[]): { flags: Record<string, string>; rest: string[] } {
  const flags: Record<string, string> = {};
  let i = 0;
  for (; i < list.length && (list[i] as string).startsWith('--'); i++) {
    const [name, ...value] = (list[i] as string).slice(2).split('=');
    flags[name as string] = value.join('=');
  }
  return { flags, rest: list.slice(i) };
}

function copyArgs(ins: Instruction) {
  const m = /^((?:--\S+\s+)*)(.*)$/s.exec(ins.args) as RegExpExecArray;
  const { flags } = flagsOf(words(m[1] as string));
  const paths = execForm(m[2] as string) ?? words(m[2] as string);
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' };
}

const all = (stage: Stage, keyword: string) => stage.body.filter((i) => i.keyword === keyword);
const lastOf = (stage: Stage, keyword: string) => all(stage, keyword).at(-1);
const indexOf = (stage: Stage, pred: (i: Instruction) => boolean) => stage.body.findIndex(pred);
const workdir = (stage: Stage) => lastOf(stage, 'WORKDIR')?.args ?? '/';

/** Whether a RUN line runs `cmd` as one of its `&&` / `;` steps. */
function runs(ins: Instruction, cmd: string): boolean {
  if (ins.keyword !== 'RUN') return false;
  return ins.args
    .replace(/\s+/g, ' ')
    .split(/&&|;|\|\|/)
    .some((step) => step.trim() === cmd || step.trim().startsWith(`${cmd} `));
}

/** Packages named by `apt-get install` in a stage. */
function aptPackages(stage: Stage): string[] {
  return all(stage, 'RUN').flatMap((ins) =>
    ins.args
      .replace(/\s+/g, ' ')
      .split(/&&|;/)
      .filter((step) => /\bapt-get install\b/.test(step))
      .flatMap((step) => words(step.replace(/.*\bapt-get install\b/, '')).filter((w) => !w.startsWith('-'))),
  );
}

/** Docker and vigil durations (`30s`, `1m30s`, `500ms`, `2h`) in milliseconds; NaN when unreadable. */
function durationMs(s: string | undefined): number {
  if (s === undefined || !/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) return Number.NaN;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (unit[m[2] as string] as number);
  return total;
}

/**
 * .dockerignore as the builder reads it: patterns anchored at the context root, `*` within one
 * folder, `**` across folders, `!` re-includes, the last matching line wins, and a pattern that
 * matches a folder excludes everything under it. Returns whether a file is left out of the context.
 */
function dockerignore(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix
        .normalize(negate ? l.slice(1).trim() : l)
        .replace(/^\/+/, '')
        .replace(/\/+$/, '');
      return { negate, re: globToRegExp(pattern) };
    });
  return (file) => {
    const parts = file.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let i = 1; i <= parts.length; i++) {
        if (rule.re.test(parts.slice(0, i).join('/'))) {
          excluded = !rule.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every file under a path of the repo, as repo-relative POSIX paths. */
function filesUnder(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return (readdirSync(abs, { recursive: true }) as string[])
    .map((f) => path.posix.join(rel, f.split(path.sep).join('/')))
    .filter((f) => statSync(path.join(ROOT, f)).isFile());
}

const stagesOf = (text: string) => {
  const stages = parseDockerfile(text);
  const runtime = stages.at(-1) as Stage;
  const build = stages.find((s) => s.name === 'build');
  return { stages, runtime, build };
};

// ---- the checks: each returns the problems it found, one line each ----

const STRICT = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

/** (a) dockerfile-utils' diagnostics, every rule raised to an error. */
function lint(text: string): string[] {
  return validate(text, STRICT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

/** (b) Every local COPY/ADD source exists and reaches the builder (not left out by .dockerignore). */
function contextProblems(text: string, ignoreText: string): string[] {
  const excluded = dockerignore(ignoreText);
  const problems: string[] = [];
  for (const stage of parseDockerfile(text)) {
    for (const ins of stage.body.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      const { flags, sources } = copyArgs(ins);
      if ('from' in flags) continue;
      for (const source of sources) {
        const rel = path.posix
          .normalize(source)
          .replace(/^(\.\/)+/, '')
          .replace(/\/+$/, '');
        if (!existsSync(path.join(ROOT, rel))) {
          problems.push(`line ${ins.line}: ${source} does not exist in the repo`);
          continue;
        }
        const left = filesUnder(rel).filter((f) => !f.endsWith('.md') && excluded(f));
        if (left.length > 0)
          problems.push(`line ${ins.line}: ${source}: ${left.length} file(s) excluded by .dockerignore, e.g. ${left[0]}`);
      }
    }
  }
  return problems;
}

/** The uid the runbooks (docs/runbooks/) give files restored into /data. */
const UID = 10001;

/** (c) Non-root, health-checked, tini as PID 1, the config's port exposed, state in the volume. */
function runtimeProblems(text: string, config: DefaultConfig): string[] {
  const { runtime } = stagesOf(text);
  const problems: string[] = [];
  const port = String(config.service.port);

  const user = lastOf(runtime, 'USER')?.args.split(':')[0];
  if (user === undefined) problems.push('the runtime stage has no USER: it would run as root');
  else if (user === 'root' || user === '0') problems.push(`USER ${user}: the image must not run as root`);
  else {
    // The runbooks chown restored files to uid 10001: the user must have that id and own the volume.
    const setup = all(runtime, 'RUN')
      .map((i) => i.args.replace(/\s+/g, ' '))
      .join(' && ');
    if (!new RegExp(`useradd [^&]*--uid ${UID} [^&]*\\b${user}\\b`).test(setup))
      problems.push(`USER ${user} is not created with uid ${UID}`);
    if (!new RegExp(`chown (-R )?${user}(:\\S+)? /data\\b`).test(setup)) problems.push(`/data does not belong to USER ${user}`);
  }

  const hc = lastOf(runtime, 'HEALTHCHECK');
  const hcm = hc && /^((?:--\S+\s+)*)CMD\s+(.*)$/s.exec(hc.args);
  if (!hc || !hcm) problems.push('no HEALTHCHECK ... CMD in the runtime stage');
  else {
    const { flags } = flagsOf(words(hcm[1] as string));
    const cmd = execForm(hcm[2] as string);
    const script = (cmd ?? []).join(' ');
    if (!cmd) problems.push('HEALTHCHECK CMD must be in exec (JSON) form');
    if (!/\/health(?![\w-])/.test(script)) problems.push('HEALTHCHECK does not ask /health');
    if (!script.includes(port)) problems.push(`HEALTHCHECK does not use the default port ${port}`);
    const interval = durationMs(flags.interval);
    const timeout = durationMs(flags.timeout);
    if (!(timeout < interval))
      problems.push(`HEALTHCHECK --timeout (${flags.timeout}) must be set and shorter than --interval (${flags.interval})`);
    if (!(durationMs(flags['start-period']) > 0)) problems.push('HEALTHCHECK needs a --start-period');
    const deadline = /AbortSignal\.timeout\((\d+)\)/.exec(script);
    if (!deadline || !(Number(deadline[1]) < timeout)) problems.push('the health request needs its own deadline, shorter than --timeout');
  }

  const entry = execForm(lastOf(runtime, 'ENTRYPOINT')?.args ?? '');
  const [bin, dashdash] = entry ?? [];
  if (!bin?.endsWith('/tini') || dashdash !== '--') problems.push('ENTRYPOINT must be ["/usr/bin/tini", "--"] in exec form');
  else if (!aptPackages(runtime).includes('tini')) problems.push('ENTRYPOINT uses tini but the runtime stage does not install it');

  const exposed = all(runtime, 'EXPOSE').flatMap((i) => words(i.args).map((p) => p.replace(/\/tcp$/, '')));
  if (!exposed.includes(port)) problems.push(`EXPOSE ${exposed.join(' ')} does not include service.port ${port}`);

  const volumes = all(runtime, 'VOLUME').flatMap((i) => execForm(i.args) ?? words(i.args));
  if (!volumes.includes('/data')) problems.push('no VOLUME /data');

  problems.push(...dataPathProblems(text, config));
  return problems;
}

/** What a config file may say about where vigil writes; every key optional (a per-environment file). */
interface DataPaths {
  storage?: { sqlite?: { path?: string } };
  backup?: { dir?: string };
}

/** The database and the self-backups land in the image's VOLUME: relative paths resolve against WORKDIR, through symlinks. */
function dataPathProblems(text: string, config: DataPaths): string[] {
  const { runtime } = stagesOf(text);
  const volumes = all(runtime, 'VOLUME').flatMap((i) => execForm(i.args) ?? words(i.args));
  const wd = workdir(runtime);
  const links = all(runtime, 'RUN').flatMap((i) => [...i.args.matchAll(/\bln -s[fn]*\s+(\S+)\s+(\S+)/g)].map((m) => [m[2], m[1]]));
  const problems: string[] = [];
  for (const [key, value] of [
    ['storage.sqlite.path', config.storage?.sqlite?.path],
    ['backup.dir', config.backup?.dir],
  ] as const) {
    // `${VAR}` is the deployer's choice, made at run time.
    if (value === undefined || value.includes('${')) continue;
    let where = path.posix.resolve(wd, value);
    for (const [link, to] of links) if (link && to && where.startsWith(`${link}/`)) where = path.posix.join(to, where.slice(link.length));
    if (!volumes.some((v) => where === v || where.startsWith(`${v}/`)))
      problems.push(`${key} (${value}) lands in ${where}, outside the volume(s) ${volumes.join(' ') || '(none)'}`);
  }
  return problems;
}

/** (d) CMD runs what `npm start` runs, on the output the build stage made (`prestart`). */
function cmdProblems(text: string, pkg: PackageJson): string[] {
  const { runtime, build } = stagesOf(text);
  const problems: string[] = [];
  const start = (pkg.scripts.start ?? '').split(/\s+/);
  const cmd = execForm(lastOf(runtime, 'CMD')?.args ?? '');
  if (!cmd) problems.push('CMD must be in exec form, so tini hands signals straight to node');
  else if (JSON.stringify(cmd) !== JSON.stringify(start))
    problems.push(`CMD ${JSON.stringify(cmd)} is not what npm start runs (${pkg.scripts.start})`);
  const prestart = pkg.scripts.prestart;
  if (prestart && !build?.body.some((i) => runs(i, prestart))) problems.push(`the build stage does not run prestart (${prestart})`);

  // The program's file must be in what the runtime stage copies from the build's outDir.
  const tsconfig = JSON.parse(read(buildTsconfig(pkg))) as { compilerOptions: { outDir: string; rootDir: string } };
  const { outDir, rootDir } = tsconfig.compilerOptions;
  const program = start[1] ?? '';
  const copied = all(runtime, 'COPY').some((i) => {
    const c = copyArgs(i);
    return (
      c.flags.from === 'build' &&
      c.sources.includes(path.posix.join(build ? workdir(build) : '/', outDir)) &&
      path.posix.resolve(workdir(runtime), c.dest) === path.posix.resolve(workdir(runtime), outDir)
    );
  });
  if (!copied) problems.push(`the runtime stage does not copy the build's ${outDir}/ into ${workdir(runtime)}/${outDir}`);
  const source = path.posix.join(rootDir, path.posix.relative(outDir, program)).replace(/\.js$/, '.ts');
  if (!existsSync(path.join(ROOT, source))) problems.push(`${program} would come from ${source}, which does not exist`);
  return problems;
}

/** The tsconfig that `npm run build` compiles with (`tsc -p <file>`). */
function buildTsconfig(pkg: PackageJson): string {
  return /-p\s+(\S+)/.exec(pkg.scripts.build ?? '')?.[1] ?? 'tsconfig.json';
}

/** That tsconfig and every file it extends: all of them must be in the build stage. */
function tsconfigChain(file: string): string[] {
  const config = JSON.parse(read(file)) as { extends?: string };
  return config.extends ? [file, ...tsconfigChain(path.posix.join(path.posix.dirname(file), config.extends))] : [file];
}

/** (e) The build stage runs `npm ci` and `npm run build` as package.json defines them, on the files they need. */
function buildProblems(text: string, pkg: PackageJson): string[] {
  const { stages, runtime, build } = stagesOf(text);
  if (!build) return ['no stage named "build"'];
  const problems: string[] = [];
  const copiedBefore = (at: number) =>
    build.body
      .slice(0, at)
      .filter((i) => i.keyword === 'COPY' && !('from' in copyArgs(i).flags))
      .flatMap((i) => copyArgs(i).sources.map((s) => path.posix.normalize(s).replace(/\/+$/, '')));

  const ci = indexOf(build, (i) => runs(i, 'npm ci'));
  if (ci < 0) problems.push('the build stage does not run npm ci');
  else
    for (const f of ['package.json', 'package-lock.json'])
      if (!copiedBefore(ci).includes(f)) problems.push(`npm ci runs before ${f} is copied in`);

  if (!pkg.scripts.build) problems.push('package.json has no build script');
  const built = indexOf(build, (i) => runs(i, 'npm run build'));
  if (built < 0) problems.push('the build stage does not run npm run build');
  else {
    if (ci >= 0 && built < ci) problems.push('npm run build runs before npm ci');
    const tsconfig = buildTsconfig(pkg);
    const { rootDir } = (JSON.parse(read(tsconfig)) as { compilerOptions: { rootDir: string } }).compilerOptions;
    for (const f of [...tsconfigChain(tsconfig), rootDir])
      if (!copiedBefore(built).includes(f)) problems.push(`npm run build runs before ${f} is copied in`);
  }
  const prune = indexOf(build, (i) => runs(i, 'npm prune --omit=dev'));
  if (prune < 0 || prune < built) problems.push('the build stage does not prune dev dependencies after the build');

  // better-sqlite3 is compiled in the build stage: its toolchain there, the same Node ABI at run time.
  if ('better-sqlite3' in pkg.dependencies) {
    const apt = aptPackages(build);
    for (const tool of ['python3', 'make', 'g++'])
      if (!apt.includes(tool)) problems.push(`the build stage does not install ${tool} for better-sqlite3`);
    for (const tool of aptPackages(runtime)) if (['make', 'g++', 'gcc'].includes(tool)) problems.push(`the runtime stage installs ${tool}`);
  }
  if (build.image !== runtime.image)
    problems.push(`build (${build.image}) and runtime (${runtime.image}) must share one Node image: native addons`);
  const major = /(\d+)/.exec(pkg.engines.node)?.[1];
  if (!runtime.image.startsWith(`node:${major}-`))
    problems.push(`runtime image ${runtime.image} is not Node ${major} (engines.node ${pkg.engines.node})`);
  for (const s of stages) {
    const tag = /^[^@]+:([^/:@]+)$/.exec(s.image)?.[1];
    if (tag === undefined || tag === 'latest') problems.push(`FROM ${s.image} is not pinned to a version`);
  }
  return problems;
}

/** k6 comes from a pinned grafana/k6 stage into a folder on PATH, where the k6 probe looks for it. */
function k6Problems(text: string): string[] {
  const { stages, runtime } = stagesOf(text);
  const k6 = stages.find((s) => s.image.startsWith('grafana/k6:'));
  if (!k6) return ['no grafana/k6 stage'];
  const problems: string[] = [];
  if (!/^grafana\/k6:\d+\.\d+\.\d+$/.test(k6.image)) problems.push(`${k6.image} is not pinned to an exact version`);
  const copy = all(runtime, 'COPY').find((i) => copyArgs(i).flags.from === k6.name);
  if (!copy || copyArgs(copy).dest !== '/usr/bin/k6') problems.push('the runtime stage does not copy k6 to /usr/bin/k6');
  return problems;
}

/** The runtime stage's ENV sets every variable of runtime.env to its value there. */
function runtimeEnvProblems(text: string, env: Record<string, string>): string[] {
  const { runtime } = stagesOf(text);
  const set: Record<string, string> = {};
  for (const i of all(runtime, 'ENV'))
    for (const w of words(i.args)) {
      const [k, ...v] = w.split('=');
      set[k as string] = v.join('=');
    }
  const problems: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!(key in set)) problems.push(`ENV does not set ${key} (runtime.env: ${value})`);
    else if (set[key] !== value) problems.push(`ENV sets ${key}=${set[key]}, runtime.env says ${value}`);
  }
  return problems;
}

/** OCI labels; the version's default and the description come from package.json. */
function labelProblems(text: string, pkg: PackageJson): string[] {
  const { runtime } = stagesOf(text);
  const args = Object.fromEntries(
    all(runtime, 'ARG').map((i) => {
      const [name, ...value] = (words(i.args)[0] ?? '').split('=');
      return [name, value.join('=')];
    }),
  );
  const labels: Record<string, string> = {};
  for (const i of all(runtime, 'LABEL'))
    for (const w of words(i.args)) {
      const [k, ...v] = w.split('=');
      labels[k as string] = v.join('=').replace(/^\$\{?(\w+)\}?$/, (_, name: string) => args[name] ?? `<unset ${name}>`);
    }
  const problems: string[] = [];
  for (const key of ['title', 'description', 'source', 'licenses', 'version'])
    if (!(`org.opencontainers.image.${key}` in labels)) problems.push(`no org.opencontainers.image.${key} label`);
  const want = { version: pkg.version, description: pkg.description, licenses: pkg.license ?? 'NOASSERTION', title: 'vigil' };
  for (const [key, value] of Object.entries(want)) {
    const got = labels[`org.opencontainers.image.${key}`];
    if (got !== undefined && got !== value) problems.push(`org.opencontainers.image.${key} is "${got}", package.json says "${value}"`);
  }
  return problems;
}

/** (f) docker-compose.yml builds this Dockerfile and agrees with its port, volume, health check and shutdown. */
function composeProblems(compose: Compose, text: string, config: DefaultConfig): string[] {
  const { runtime } = stagesOf(text);
  const vigil = compose.services.vigil;
  if (!vigil) return ['docker-compose.yml has no vigil service'];
  const problems: string[] = [];
  const build = typeof vigil.build === 'string' ? { context: vigil.build } : vigil.build;
  if (!build || path.posix.normalize(build.context ?? '.') !== '.' || (build.dockerfile ?? 'Dockerfile') !== 'Dockerfile')
    problems.push('the vigil service does not build ./Dockerfile');

  const exposed = all(runtime, 'EXPOSE').flatMap((i) => words(i.args).map((p) => p.replace(/\/tcp$/, '')));
  const targets = (vigil.ports ?? []).map((p) =>
    String(
      typeof p === 'string'
        ? p
            .split(':')
            .at(-1)
            ?.replace(/\/tcp$/, '')
        : p.target,
    ),
  );
  if (!targets.includes(String(config.service.port)))
    problems.push(`the vigil service does not publish service.port ${config.service.port}`);
  for (const t of targets) if (!exposed.includes(t)) problems.push(`the vigil service publishes ${t}, which the image does not EXPOSE`);

  const volumes = all(runtime, 'VOLUME').flatMap((i) => execForm(i.args) ?? words(i.args));
  const mounts = (vigil.volumes ?? []).map((v) => (typeof v === 'string' ? (v.split(':')[1] ?? v) : v.target));
  for (const v of volumes) if (!mounts.includes(v)) problems.push(`the vigil service mounts nothing at the image's VOLUME ${v}`);

  const hc = vigil.healthcheck;
  if (hc?.disable) problems.push('the vigil service disables the health check');
  else if (hc?.test !== undefined && ![hc.test].flat().join(' ').includes('/health'))
    problems.push('the vigil service overrides the health check with one that does not ask /health');

  const grace = durationMs(vigil.stop_grace_period);
  const shutdown = durationMs(config.service.shutdownTimeout);
  if (!(grace > shutdown))
    problems.push(
      `stop_grace_period (${vigil.stop_grace_period ?? 'default 10s'}) must exceed service.shutdownTimeout (${config.service.shutdownTimeout})`,
    );
  return problems;
}

/** Replaces text that must be there, so a broken variant never silently equals the original. */
function mutate(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`mutation found nothing to replace: ${from}`);
  return out;
}

// ---- the tests ----

describe('Dockerfile lint (dockerfile-utils)', () => {
  it('reports nothing, every rule as an error', () => {
    expect(lint(DOCKERFILE)).toEqual([]);
  });

  it('names a broken instruction', () => {
    expect(lint(mutate(DOCKERFILE, '--interval=30s', '--interval=0s'))).toEqual([
      expect.stringMatching(/^line \d+: Interval "interval" cannot be less than 1ms$/),
    ]);
    expect(lint(`${DOCKERFILE}cmd ["node"]\n`)).toContainEqual(expect.stringMatching(/only be one CMD/));
  });
});

describe('build context', () => {
  it('holds every local COPY source, none left out by .dockerignore', () => {
    expect(contextProblems(DOCKERFILE, DOCKERIGNORE)).toEqual([]);
  });

  it('names a missing source and an ignored one', () => {
    expect(contextProblems(mutate(DOCKERFILE, 'COPY probes ./probes', 'COPY probez ./probes'), DOCKERIGNORE)).toEqual([
      expect.stringMatching(/^line \d+: probez does not exist in the repo$/),
    ]);
    expect(contextProblems(DOCKERFILE, `${DOCKERIGNORE}**/*.ts\n`)).toEqual([
      expect.stringMatching(/^line \d+: src: \d+ file\(s\) excluded by \.dockerignore, e\.g\. src\/.+\.ts$/),
    ]);
    expect(contextProblems(DOCKERFILE, `${DOCKERIGNORE}**/*.ts\n!src\n`)).toEqual([]);
  });

  it('keeps local state, secrets and build output out of the context', () => {
    const excluded = dockerignore(DOCKERIGNORE);
    for (const f of [
      'data/vigil.db',
      'data/backups/vigil-x.db',
      'node_modules/yaml/package.json',
      'dist/main.js',
      '.git/HEAD',
      '.env',
      'coverage/x.json',
    ])
      expect(excluded(f), f).toBe(true);
    for (const f of ['package.json', 'package-lock.json', 'src/main.ts', 'config/default.yaml', 'probes/vigil.yaml'])
      expect(excluded(f), f).toBe(false);
  });
});

describe('runtime stage', () => {
  it('runs as a non-root user under tini, checks /health, exposes the config port, keeps state in /data', () => {
    expect(runtimeProblems(DOCKERFILE, CONFIG)).toEqual([]);
  });

  it.each([
    ['USER vigil', 'USER root', 'USER root: the image must not run as root'],
    ['--uid 10001', '--uid 1000', 'USER vigil is not created with uid 10001'],
    ['chown vigil:vigil /data', 'chown root:root /data', '/data does not belong to USER vigil'],
    ["'/health'", "'/healthz'", 'HEALTHCHECK does not ask /health'],
    ['AbortSignal.timeout(4000)', 'AbortSignal.timeout(9000)', 'the health request needs its own deadline, shorter than --timeout'],
    ['ENTRYPOINT ["/usr/bin/tini", "--"]', 'ENTRYPOINT ["node"]', 'ENTRYPOINT must be ["/usr/bin/tini", "--"] in exec form'],
    ['EXPOSE 8080', 'EXPOSE 3000', 'EXPOSE 3000 does not include service.port 8080'],
    [
      'VOLUME /data',
      'VOLUME /var/lib/vigil',
      'storage.sqlite.path (./data/vigil.db) lands in /data/vigil.db, outside the volume(s) /var/lib/vigil',
    ],
    [
      / \\\n && ln -s \/data \/app\/data/,
      '',
      'storage.sqlite.path (./data/vigil.db) lands in /app/data/vigil.db, outside the volume(s) /data',
    ],
  ])('names a broken runtime: %s → %s', (from, to, problem) => {
    expect(runtimeProblems(mutate(DOCKERFILE, from, to), CONFIG)).toContain(problem);
  });

  it('runs vigil in the environment it is measured under (runtime.env)', () => {
    const env = parseEnvFile(read('runtime.env'));
    expect(Object.keys(env)).toEqual(['MALLOC_ARENA_MAX', 'NODE_OPTIONS']);
    expect(runtimeEnvProblems(DOCKERFILE, env)).toEqual([]);
    expect(runtimeEnvProblems(mutate(DOCKERFILE, 'MALLOC_ARENA_MAX=2', 'MALLOC_ARENA_MAX=8'), env)).toEqual([
      'ENV sets MALLOC_ARENA_MAX=8, runtime.env says 2',
    ]);
    expect(runtimeEnvProblems(DOCKERFILE, { ...env, UV_THREADPOOL_SIZE: '2' })).toEqual([
      'ENV does not set UV_THREADPOOL_SIZE (runtime.env: 2)',
    ]);
  });

  it('installs Chromium for the browser kind by default, and only through the BROWSER build argument', () => {
    const runtime = DOCKERFILE.slice(DOCKERFILE.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^ARG BROWSER="chromium fonts-liberation"$/m);
    const install = /apt-get install -y --no-install-recommends ([^\\\n]*)/.exec(runtime)?.[1] ?? '';
    expect(install.split(' ')).toContain('$BROWSER');
    expect(install).not.toMatch(/\bchromium\b/);
  });

  it('keeps the data paths of every config file in the volume', () => {
    for (const file of readdirSync(path.join(ROOT, 'config')).filter((f) => /\.ya?ml$/.test(f)))
      expect(dataPathProblems(DOCKERFILE, parse(read(`config/${file}`)) as DataPaths), file).toEqual([]);
    expect(
      dataPathProblems(DOCKERFILE, { storage: { sqlite: { path: '/var/lib/vigil/vigil.db' } }, backup: { dir: './backups' } }),
    ).toEqual([
      'storage.sqlite.path (/var/lib/vigil/vigil.db) lands in /var/lib/vigil/vigil.db, outside the volume(s) /data',
      'backup.dir (./backups) lands in /app/backups, outside the volume(s) /data',
    ]);
  });

  it('follows the config: a different default port must be exposed and health-checked', () => {
    const config = { ...CONFIG, service: { ...CONFIG.service, port: 9090 } };
    expect(runtimeProblems(DOCKERFILE, config)).toEqual([
      'HEALTHCHECK does not use the default port 9090',
      'EXPOSE 8080 does not include service.port 9090',
    ]);
  });
});

describe('the program', () => {
  it('CMD is what npm start runs, on the build stage output', () => {
    expect(PKG.scripts.start).toBe('node dist/main.js');
    expect(cmdProblems(DOCKERFILE, PKG)).toEqual([]);
  });

  it('names a CMD that differs from npm start', () => {
    expect(cmdProblems(mutate(DOCKERFILE, 'CMD ["node", "dist/main.js"]', 'CMD ["npm", "start"]'), PKG)).toEqual([
      'CMD ["npm","start"] is not what npm start runs (node dist/main.js)',
    ]);
    expect(cmdProblems(mutate(DOCKERFILE, 'CMD ["node", "dist/main.js"]', 'CMD node dist/main.js'), PKG)).toEqual([
      'CMD must be in exec form, so tini hands signals straight to node',
    ]);
    expect(cmdProblems(DOCKERFILE, { ...PKG, scripts: { ...PKG.scripts, start: 'node dist/server.js' } })).toContain(
      'dist/server.js would come from src/server.ts, which does not exist',
    );
  });
});

describe('build stage', () => {
  it('runs npm ci and npm run build as package.json defines them, then prunes dev dependencies', () => {
    expect(buildProblems(DOCKERFILE, PKG)).toEqual([]);
  });

  it.each([
    ['RUN npm ci', 'RUN npm install', 'the build stage does not run npm ci'],
    ['COPY package.json package-lock.json ./', 'COPY package.json ./', 'npm ci runs before package-lock.json is copied in'],
    ['COPY tsconfig.json tsconfig.build.json ./', 'COPY tsconfig.build.json ./', 'npm run build runs before tsconfig.json is copied in'],
    [' \\\n && npm prune --omit=dev', '', 'the build stage does not prune dev dependencies after the build'],
    ['python3 make g++', 'python3 make', 'the build stage does not install g++ for better-sqlite3'],
    ['FROM grafana/k6:1.7.1 AS k6', 'FROM grafana/k6 AS k6', 'FROM grafana/k6 is not pinned to a version'],
    [
      /\nFROM node:20-bookworm-slim\n/,
      '\nFROM node:22-bookworm-slim\n',
      'build (node:20-bookworm-slim) and runtime (node:22-bookworm-slim) must share one Node image: native addons',
    ],
  ])('names a broken build: %s → %s', (from, to, problem) => {
    expect(buildProblems(mutate(DOCKERFILE, from, to), PKG)).toContain(problem);
  });

  it('brings a pinned k6 onto PATH', () => {
    expect(k6Problems(DOCKERFILE)).toEqual([]);
    expect(k6Problems(mutate(DOCKERFILE, 'grafana/k6:1.7.1', 'grafana/k6:1'))).toEqual(['grafana/k6:1 is not pinned to an exact version']);
  });

  it('labels the image from package.json', () => {
    expect(labelProblems(DOCKERFILE, PKG)).toEqual([]);
    expect(labelProblems(DOCKERFILE, { ...PKG, version: '0.2.0' })).toEqual([
      'org.opencontainers.image.version is "0.1.0", package.json says "0.2.0"',
    ]);
  });
});

describe('docker-compose.yml', () => {
  it('builds this Dockerfile; port, volume, health check and stop grace agree with it', () => {
    expect(composeProblems(COMPOSE, DOCKERFILE, CONFIG)).toEqual([]);
  });

  it('names a service that disagrees', () => {
    const vigil = COMPOSE.services.vigil as ComposeService;
    const broken = (patch: ComposeService) => ({ services: { ...COMPOSE.services, vigil: { ...vigil, ...patch } } });
    expect(composeProblems(broken({ ports: ['8080:3000'] }), DOCKERFILE, CONFIG)).toEqual([
      'the vigil service does not publish service.port 8080',
      'the vigil service publishes 3000, which the image does not EXPOSE',
    ]);
    expect(composeProblems(broken({ volumes: ['vigil-data:/app/state'] }), DOCKERFILE, CONFIG)).toEqual([
      "the vigil service mounts nothing at the image's VOLUME /data",
    ]);
    expect(composeProblems(broken({ healthcheck: { test: ['CMD', 'true'] } }), DOCKERFILE, CONFIG)).toEqual([
      'the vigil service overrides the health check with one that does not ask /health',
    ]);
    expect(composeProblems(broken({ stop_grace_period: '5s' }), DOCKERFILE, CONFIG)).toEqual([
      'stop_grace_period (5s) must exceed service.shutdownTimeout (10s)',
    ]);
    expect(composeProblems(broken({ build: { context: '.', dockerfile: 'Dockerfile.dev' } }), DOCKERFILE, CONFIG)).toEqual([
      'the vigil service does not build ./Dockerfile',
    ]);
  });
});
