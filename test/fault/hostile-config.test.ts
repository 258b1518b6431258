import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { probers } from '../../src/probers/index.js';
import { configLoader, type LoadOutcome } from '../helpers/config-loader.js';
import { rng } from '../helpers/random.js';
import { workspace } from '../helpers/workspace.js';

// Hostile and random config files through loadConfig, each in a worker thread with a time bound: every
// one must end as a ConfigError whose lines read `file: path: what was expected` (one line each, of
// bounded length), never another exception, never a hang, and Object.prototype must be untouched.

const CONFIG = 'config/default.yaml';
const PROBES = 'probes/p.yaml';
/** `file: path: expected …` on one line: the form every problem takes. */
const LINE = /^(?<file>[^\s:][^:\n]*): (?<path>[^\n]+?): expected [^\n]+$/;
/** A problem line is cut at 1,000 characters plus the note saying how much was cut. */
const MAX_LINE = 1_100;
const MB = 1024 * 1024;
const DEEP = /service\.name: expected a non-empty string, got a (list|mapping)|expected valid YAML/;

type Files = Record<string, string | Buffer>;

interface Case {
  name: string;
  files?: Files;
  env?: Record<string, string>;
  /** Makes what files cannot: folders, FIFOs, sockets, symlinks. Returns what releases a blocked reader. */
  setup?(dir: string): (() => void) | undefined;
  /** The files the problems must name (relative to the workspace, or `(environment)`). */
  names: string[];
  /** Some problem line says this. */
  says: RegExp;
  boundMs?: number;
}

const deep = (open: string, close: string, n: number, inner = '1') => `${open.repeat(n)}${inner}${close.repeat(n)}`;
const blockDeep = (n: number) => {
  let text = 'service:\n';
  for (let i = 1; i <= n; i++) text += `${' '.repeat(i * 2)}k${i}:\n`;
  return `${text}${' '.repeat((n + 1) * 2)}leaf: 1\n`;
};
/** "Billion laughs": nine levels of nine aliases each, 9^9 nodes once expanded. */
const aliasBomb = () => {
  let text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i <= 9; i++) text += `a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(', ')}]\n`;
  return text;
};
const garbage = (seed: number, bytes: number) => {
  const r = rng(seed);
  return Buffer.from(Array.from({ length: bytes }, () => Math.floor(r() * 256)));
};
const mkfifo = (file: string) => {
  rmSync(file, { force: true });
  execFileSync('mkfifo', [file]);
  // A reader blocked opening the FIFO gets EOF once a writer opens and closes it.
  return () => {
    try {
      closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader waiting.
    }
  };
};
const sockets: Server[] = [];
const unixSocket = (file: string) => {
  const server = createServer().listen(file);
  sockets.push(server);
  return undefined;
};
const tokenFrom = (ref: string) => `auth:\n  tokens:\n    - { name: ops, token: "${ref}", role: operator }\n`;
// Just under the 8 MiB cap on a config file (past it the file is refused unread: test/config/load.test.ts).
const sevenMb = 'x'.repeat(7 * MB);

const CASES: Case[] = [
  { name: 'a YAML alias bomb (billion laughs)', files: { [CONFIG]: aliasBomb() }, names: [CONFIG], says: /excessive alias count/ },
  {
    name: 'an alias bomb in a probe file',
    files: {
      [PROBES]: `- id: a\n  kind: http\n  url: http://127.0.0.1/\n  schedule: "* * * * *"\n  labels:\n${aliasBomb()
        .split('\n')
        .map((l) => (l ? `    ${l}` : l))
        .join('\n')}`,
    },
    names: [PROBES],
    says: /^probes\/p\.yaml: \(file\): expected valid YAML; excessive alias count/,
  },
  {
    name: 'a 7 MB string where a port goes',
    files: { [CONFIG]: `service:\n  port: "${sevenMb}"\n` },
    names: [CONFIG],
    says: /service\.port: expected a port number 0-65535, got "x{100,}… \(\d+ more characters\)$/,
    boundMs: 20_000,
  },
  {
    name: 'a 7 MB key',
    files: { [CONFIG]: `? "${sevenMb}"\n: 1\n` },
    names: [CONFIG],
    says: /^config\/default\.yaml: x{100}…: expected one of the keys .*, got "x+… \(\d+ more characters\)$/,
    boundMs: 20_000,
  },
  {
    name: 'a 7 MB ${…} reference name',
    files: { [CONFIG]: `service:\n  name: "\${${sevenMb}}"\n` },
    names: [CONFIG],
    says: /service\.name: expected the environment variable x{100,}… \(\d+ more characters\)$/,
    boundMs: 20_000,
  },
  // Whether the parser gives up on the depth (its stack) or the schema rejects what it built, a ConfigError either way.
  { name: '1,000-deep flow lists', files: { [CONFIG]: `service:\n  name: ${deep('[', ']', 1000)}\n` }, names: [CONFIG], says: DEEP },
  { name: '1,000-deep flow mappings', files: { [CONFIG]: `service:\n  name: ${deep('{a: ', '}', 1000)}\n` }, names: [CONFIG], says: DEEP },
  {
    name: '1,000-deep block mappings',
    files: { [CONFIG]: blockDeep(1000) },
    names: [CONFIG],
    says: /service\.k1: expected one of the keys|expected valid YAML/,
  },
  {
    name: '1,000-deep nesting in a probe file',
    files: { [PROBES]: deep('[', ']', 1000) },
    names: [PROBES],
    says: /\[0\]: expected a probe definition|expected valid YAML/,
  },
  {
    name: '300-deep nesting that parses',
    files: { [CONFIG]: `service:\n  name: ${deep('{a: ', '}', 300)}\n` },
    names: [CONFIG],
    says: /service\.name: expected a non-empty string, got a mapping/,
  },
  {
    name: '__proto__ at the root',
    files: { [CONFIG]: '__proto__: { polluted: yes, port: 1 }\n' },
    names: [CONFIG],
    says: /^config\/default\.yaml: __proto__: expected a config key, got "__proto__"/,
  },
  {
    name: '__proto__ inside a section (would set service.port by inheritance)',
    files: { [CONFIG]: 'service:\n  __proto__: { port: 99999, polluted: yes }\n' },
    names: [CONFIG],
    says: /service\.__proto__: expected a config key/,
  },
  {
    name: '__proto__ as a JSON-style key, in a list item',
    files: { [CONFIG]: 'auth:\n  tokens:\n    - { "__proto__": { "polluted": true }, name: a, token: "0123456789abcdefgh" }\n' },
    names: [CONFIG],
    says: /auth\.tokens\[0\]\.__proto__: expected a config key/,
  },
  {
    name: '__proto__ in a probe definition',
    files: { [PROBES]: '- id: a\n  kind: http\n  url: http://127.0.0.1/\n  schedule: "* * * * *"\n  __proto__: { polluted: 1 }\n' },
    names: [PROBES],
    says: /\[0\]\.__proto__: expected a config key/,
  },
  {
    name: 'constructor and prototype keys',
    files: { [CONFIG]: 'constructor: { prototype: { polluted: 1 } }\nservice:\n  constructor: 1\n  prototype: { polluted: 1 }\n' },
    names: [CONFIG],
    says: /^config\/default\.yaml: constructor: expected one of the keys/,
  },
  { name: 'duplicate keys', files: { [CONFIG]: 'service:\n  port: 1\n  port: 2\n' }, names: [CONFIG], says: /unique/ },
  { name: 'tabs for indentation', files: { [CONFIG]: 'service:\n\tport: 1\n\tname: x\n' }, names: [CONFIG], says: /tab|YAML/i },
  { name: 'binary garbage (seed 1)', files: { [CONFIG]: garbage(1, 4096) }, names: [CONFIG], says: /./ },
  { name: 'binary garbage (seed 2)', files: { [CONFIG]: garbage(2, 4096) }, names: [CONFIG], says: /./ },
  { name: 'binary garbage in a probe file', files: { [PROBES]: garbage(3, 4096) }, names: [PROBES], says: /./ },
  { name: 'NUL bytes', files: { [CONFIG]: Buffer.alloc(1024) }, names: [CONFIG], says: /./ },
  {
    name: 'a UTF-16 file',
    files: { [CONFIG]: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('service:\n  port: 80\n', 'utf16le')]) },
    names: [CONFIG],
    says: /./,
  },
  {
    name: 'a folder where the config file goes',
    setup: (dir) => {
      rmSync(path.join(dir, CONFIG));
      mkdirSync(path.join(dir, CONFIG));
      return undefined;
    },
    names: [CONFIG],
    says: /\(file\): expected the default config file; it is a folder/,
  },
  {
    name: 'a folder where a probe file goes',
    setup: (dir) => {
      mkdirSync(path.join(dir, PROBES));
      return undefined;
    },
    names: [PROBES],
    says: /\(file\): expected a readable YAML file; it is a folder/,
  },
  {
    name: 'VIGIL_CONFIG naming a folder',
    env: { VIGIL_CONFIG: 'probes' },
    names: ['probes'],
    says: /^probes: \(file\): expected the config file VIGIL_CONFIG names; it is a folder/,
  },
  {
    name: 'a file where the probes folder goes',
    files: { [CONFIG]: 'probes:\n  dir: ./config/default.yaml\n' },
    names: [CONFIG],
    says: /probes\.dir: expected a folder of probe definitions .*it is not a folder/,
  },
  {
    name: 'the config file a FIFO (reading it would block until a writer came)',
    setup: (dir) => mkfifo(path.join(dir, CONFIG)),
    names: [CONFIG],
    says: /\(file\): expected the default config file; it is not a regular file/,
  },
  {
    name: 'a probe file a FIFO',
    setup: (dir) => mkfifo(path.join(dir, PROBES)),
    names: [PROBES],
    says: /\(file\): expected a readable YAML file; it is not a regular file/,
  },
  {
    name: 'the config file a symlink to /dev/zero (never ends)',
    setup: (dir) => {
      rmSync(path.join(dir, CONFIG));
      symlinkSync('/dev/zero', path.join(dir, CONFIG));
      return undefined;
    },
    names: [CONFIG],
    says: /it is not a regular file/,
  },
  {
    name: 'VIGIL_CONFIG=/dev/urandom',
    env: { VIGIL_CONFIG: '/dev/urandom' },
    names: ['/dev/urandom'],
    says: /^\/dev\/urandom: \(file\): expected the config file VIGIL_CONFIG names; it is not a regular file/,
  },
  {
    name: '${file:…} that does not exist',
    files: { [CONFIG]: tokenFrom('${file:secrets/nope}') },
    names: [CONFIG],
    says: /auth\.tokens\[0\]\.token: expected a readable file for \$\{file:secrets\/nope\}; it does not exist/,
  },
  {
    name: '${file:…} naming a folder',
    files: { [CONFIG]: tokenFrom('${file:probes}') },
    names: [CONFIG],
    says: /expected a readable file for \$\{file:probes\}; it is a folder/,
  },
  {
    name: '${file:/dev/zero}',
    files: { [CONFIG]: tokenFrom('${file:/dev/zero}') },
    names: [CONFIG],
    says: /expected a readable file for \$\{file:\/dev\/zero\}; it is not a regular file/,
  },
  {
    name: '${file:…} naming a FIFO',
    files: { [CONFIG]: tokenFrom('${file:secret.fifo}') },
    setup: (dir) => mkfifo(path.join(dir, 'secret.fifo')),
    names: [CONFIG],
    says: /expected a readable file for \$\{file:secret\.fifo\}; it is not a regular file/,
  },
  {
    name: '${file:…} naming a unix socket',
    files: { [CONFIG]: tokenFrom('${file:secret.sock}') },
    setup: (dir) => unixSocket(path.join(dir, 'secret.sock')),
    names: [CONFIG],
    says: /expected a readable file for \$\{file:secret\.sock\}; it /,
  },
  {
    name: '${file:…} of 2 MB',
    files: { [CONFIG]: tokenFrom('${file:big.txt}'), 'big.txt': 'k'.repeat(2 * MB) },
    names: [CONFIG],
    says: /expected a readable file for \$\{file:big\.txt\}; it is larger than 1 MiB, the cap on files vigil reads/,
  },
  {
    name: '${file:…} through a symlink loop',
    files: { [CONFIG]: tokenFrom('${file:loop}') },
    setup: (dir) => {
      symlinkSync('loop', path.join(dir, 'loop'));
      return undefined;
    },
    names: [CONFIG],
    says: /expected a readable file for \$\{file:loop\}; it cannot be read \(ELOOP\)/,
  },
  {
    name: 'an empty ${file:…} for a token',
    files: { [CONFIG]: tokenFrom('${file:empty}'), empty: '' },
    names: [CONFIG],
    says: /auth\.tokens\[0\]\.token: expected a token of at least 16 characters/,
  },
];

/** Asserts one load's outcome: a ConfigError in time, every line well-formed and naming the right file. */
function expectConfigError(c: Pick<Case, 'names' | 'says' | 'name'>, r: LoadOutcome, boundMs: number) {
  const context = `${c.name}: ${JSON.stringify(r).slice(0, 2_000)}`;
  expect(r.outcome, context).toBe('ConfigError');
  if (r.outcome !== 'ConfigError') return;
  expect(r.ms, context).toBeLessThan(boundMs);
  expect(r.code).toBe('VIGIL_ERR_CONFIG');
  expect(r.prototypesClean, context).toBe(true);
  expect(r.problems.length, context).toBeGreaterThan(0);
  for (const line of r.problems) {
    expect(line.length, context).toBeLessThanOrEqual(MAX_LINE);
    const m = LINE.exec(line);
    expect(m, `${c.name}: not "file: path: expected …": ${JSON.stringify(line.slice(0, 300))}`).not.toBeNull();
    expect(c.names, `${c.name}: ${line.slice(0, 300)}`).toContain(m?.groups?.file);
  }
  expect(
    r.problems.some((l) => c.says.test(l)),
    `${c.name}: no line says ${c.says}: ${r.problems.map((l) => l.slice(0, 300)).join(' | ')}`,
  ).toBe(true);
  // The whole message stays readable too: a 7 MB value is not repeated in it.
  expect(r.messageLength).toBeLessThan(100_000);
}

describe('hostile config files through loadConfig', () => {
  const loader = configLoader();
  const spaces: Array<ReturnType<typeof workspace>> = [];
  /** A workspace with an empty default.yaml unless `files` has one. */
  const space = (files: Files = {}) => {
    const ws = workspace({});
    for (const [name, text] of Object.entries({ [CONFIG]: '', ...files })) {
      mkdirSync(path.dirname(path.join(ws.dir, name)), { recursive: true });
      writeFileSync(path.join(ws.dir, name), text);
    }
    spaces.push(ws);
    return ws;
  };

  beforeAll(async () => {
    // Started here, so its first load does not count the worker's start against a case's bound.
    const warm = space();
    expect((await loader.load({ cwd: warm.dir, env: {} }, 20_000)).outcome).toBe('loaded');
  });
  afterAll(async () => {
    await loader.close();
    for (const s of sockets) s.close();
    for (const ws of spaces) ws.remove();
  });

  it.each(CASES)('$name: a ConfigError naming file and path, in bounded time', async (c) => {
    const ws = space(c.files);
    const release = c.setup?.(ws.dir);
    const bound = c.boundMs ?? 5_000;
    const r = await loader.load({ cwd: ws.dir, env: c.env ?? {} }, bound, release);
    expectConfigError(c, r, bound);
  });

  it('an empty file is an empty config (every default), not an error', async () => {
    // The documented exception to "each must fail": an empty default.yaml or probe file means "nothing set".
    const ws = space({ [CONFIG]: '', [PROBES]: '' });
    const r = await loader.load({ cwd: ws.dir, env: {} }, 5_000);
    expect(r).toMatchObject({ outcome: 'loaded', prototypesClean: true });
    const loaded = loadConfig({ cwd: ws.dir, env: {} });
    expect(loaded.service.service.port).toBe(8080);
    expect(loaded.probes).toEqual([]);
  });

  it('200 seeded random YAML documents: each a ConfigError in bounded time, never another exception', async () => {
    const kinds = Object.keys(probers);
    const failures: string[] = [];
    let slowest = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const doc = randomDocument(seed, kinds);
      const ws = space({ [CONFIG]: doc.config ?? '', [PROBES]: doc.probes ?? '' });
      const r = await loader.load({ cwd: ws.dir, env: { SET: 'value-from-env' } }, 3_000);
      slowest = Math.max(slowest, r.ms);
      try {
        expectConfigError({ name: `seed ${seed} (${doc.family})`, names: [CONFIG, PROBES], says: /./ }, r, 3_000);
      } catch (err) {
        failures.push(`${(err as Error).message.slice(0, 600)}\n--- ${doc.family}:\n${(doc.config ?? doc.probes ?? '').slice(0, 400)}`);
      }
      ws.remove();
    }
    expect(failures, failures.slice(0, 3).join('\n\n')).toEqual([]);
    expect(slowest).toBeLessThan(3_000);
  });

  it('leaves Object.prototype of this process untouched when loading __proto__ and constructor keys here', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const hostile = CASES.filter((c) => /__proto__|constructor/.test(c.name));
    expect(hostile.length).toBeGreaterThanOrEqual(5);
    for (const c of hostile) {
      const ws = space(c.files);
      let error: unknown;
      try {
        loadConfig({ cwd: ws.dir, env: {} });
      } catch (err) {
        error = err;
      }
      expect(error, c.name).toBeInstanceOf(ConfigError);
      expect(
        (error as ConfigError).problems.some((l) => c.says.test(l)),
        c.name,
      ).toBe(true);
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { port?: unknown }).port).toBeUndefined();
    for (const _ in {}) expect.unreachable('an enumerable property appeared on Object.prototype');
  });
});

// --- Random documents ---------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const PIECES = [
  'a',
  'Z',
  '0',
  '9',
  '-',
  '_',
  '.',
  ' ',
  ':',
  '#',
  '&',
  '*',
  '!',
  '|',
  '>',
  '%',
  '@',
  '`',
  '"',
  "'",
  '\\',
  '\t',
  '\n',
  '\r',
  'é',
  'ß',
  '中文',
  '🙂',
  '\u202e',
  '\u0000',
  '\u0007',
  '\u200b',
  '\ufeff',
  'Ω',
  '$',
  '{',
  '}',
  '[',
  ']',
  ',',
  '?',
  '<<',
  '${SET}',
  '${NOPE}',
  '${file:nowhere}',
  '${X:-fallback}',
  '$${',
  '${',
  '__proto__',
  'constructor',
  '---',
  '...',
  '~',
];
const SCALARS: Json[] = [
  null,
  true,
  false,
  0,
  -1,
  2 ** 53 + 2,
  -(2 ** 63),
  1e308,
  -0,
  0.1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'yes',
  'no',
  '~',
  'null',
  '0x1F',
  '1_000',
  '2026-11-02',
  '2026-02-30T25:61:00Z',
  '10s',
  '-5m',
  '1e309s',
  '0s',
  '99999999999d',
  'http://',
  'https://[::1',
];
const SECTIONS = [
  'service',
  'probes',
  'scheduler',
  'storage',
  'alerting',
  'people',
  'schedules',
  'oncall',
  'interactions',
  'escalation',
  'channels',
  'auth',
  'report',
  'metrics',
];
const FIELDS = [
  'id',
  'kind',
  'schedule',
  'timeout',
  'retry',
  'labels',
  'alert',
  'url',
  'expect',
  'host',
  'port',
  'method',
  'headers',
  'body',
  'resolvers',
  'record',
  'type',
  'every',
  'count',
  'delay',
  'channels',
  'values',
  'failures',
  'dependsOn',
  'policy',
];
const CRON_TOKENS = [
  '*',
  '*/0',
  '*/x',
  '1-',
  '60',
  '-1',
  '1-100',
  'L',
  '#',
  '?',
  '1,,3',
  '9999999999999999999',
  'mon-fri',
  'jan',
  '*/1',
  '0',
  '7',
];

/** One random document of one of five families, seeded: YAML written from random values, some of it mangled. */
function randomDocument(seed: number, kinds: string[]): { family: string; config?: string; probes?: string } {
  const r = rng(seed * 7919);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const str = (): string => Array.from({ length: 1 + int(8) }, () => pick(PIECES)).join('');
  const key = () => (r() < 0.3 ? pick([...SECTIONS, ...FIELDS]) : str());
  const value = (depth: number): Json => {
    if (depth >= 4 || r() < 0.35) return r() < 0.5 ? pick(SCALARS) : str();
    if (r() < 0.5) return Array.from({ length: int(5) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: int(5) }, () => [key(), value(depth + 1)]));
  };
  // An unknown key every document carries, so none can be valid by chance.
  const unknown = (): [string, Json] => [`zz-${seed}-${str()}`, value(2)];
  const cron = () => Array.from({ length: 4 + int(4) }, () => pick(CRON_TOKENS)).join(' ');
  const mangle = (text: string) => {
    // Insertions and substitutions only: the unknown key survives, so a mangled document is still invalid.
    const chars = [...text];
    for (let i = 0, n = 1 + int(6); i < n; i++) {
      const at = int(chars.length + 1);
      if (r() < 0.5 && at < chars.length) chars[at] = pick(PIECES);
      else chars.splice(at, 0, pick(PIECES));
    }
    return chars.join('');
  };
  const yaml = (v: unknown) => {
    const text = stringify(v, { aliasDuplicateObjects: false });
    return r() < 0.3 ? mangle(text) : text;
  };

  switch (seed % 5) {
    case 0:
      return {
        family: 'random root',
        config: yaml(
          // Otherwise a root that is not a mapping: a string, a number, a list with something in it.
          r() < 0.8
            ? Object.fromEntries([unknown(), ...Array.from({ length: int(4) }, () => [str(), value(1)])])
            : pick([str(), 1 + int(9), [value(1)]]),
        ),
      };
    case 1:
      return {
        family: 'random sections',
        config: yaml(Object.fromEntries([...Array.from({ length: 1 + int(4) }, () => [pick(SECTIONS), value(1)]), unknown()])),
      };
    case 2: {
      // Shapes the schema takes, with references to things that do not exist: the cross-checks run on them.
      const person = `p${int(3)}`;
      const config = {
        people: { [person]: { name: str(), ...(r() < 0.5 ? { email: pick(['a@b.c', str()]) } : {}) } },
        schedules: {
          s: {
            timezone: pick(['UTC', 'Europe/Berlin', 'Mars/Olympus_Mons', str()]),
            layers: [
              {
                rotation: pick(['daily', 'weekly', { every: pick(['1h', '0s', '12h', str()]) }, str()]),
                handoff: pick(['mon 09:00', '25:00', 'xx', str()]),
                start: pick(['2026-11-02', '2026-02-30', '0000-00-00', '9999-99-99']),
                participants: [pick([person, 'p9', str()])],
              },
            ],
          },
        },
        escalation: {
          e: { steps: [{ notify: [pick(['oncall:s', 'oncall:nope', `person:${person}`, 'person:x', str()]), `chan-${seed}`] }] },
        },
      };
      return { family: 'on-call references', config: yaml(config) };
    }
    case 3: {
      const items = Array.from({ length: 1 + int(3) }, () => ({
        id: pick(['ok-id', str()]),
        kind: pick([...kinds, ...kinds, str()]),
        schedule: pick([cron(), cron(), { every: pick([...SCALARS, str()]) }, str()]),
        url: pick(['http://127.0.0.1/', str()]),
        [pick(FIELDS)]: value(1),
        alert: r() < 0.5 ? { channels: [str()], dependsOn: [str()], values: [str()] } : value(1),
        [`zz-${seed}`]: value(2),
      }));
      return { family: 'probe definitions', config: 'channels: {}\n', probes: yaml(items) };
    }
    default:
      return {
        family: 'random probe file',
        // Otherwise a root that is not a list: a mapping with something in it, a string, a number.
        probes: yaml(
          r() < 0.8
            ? [Object.fromEntries([unknown()]), ...Array.from({ length: int(3) }, () => value(1))]
            : pick([Object.fromEntries([unknown()]), str(), 1 + int(9)]),
        ),
      };
  }
}
