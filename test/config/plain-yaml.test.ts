import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parsePlainYaml } from '../../src/config/plain-yaml.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name.startsWith('.')) return [];
    const full = path.join(dir, e.name);
    return e.isDirectory() ? yamlFiles(full) : /\.ya?ml$/.test(e.name) ? [full] : [];
  });
}

/** The fast reader either declines (undefined) or returns exactly what the `yaml` package does. */
function agrees(text: string) {
  const fast = parsePlainYaml(text);
  if (fast !== undefined) expect(fast).toStrictEqual(parse(text));
  return fast !== undefined;
}

describe('parsePlainYaml', () => {
  it('reads every YAML file of the repository as the yaml package does, or declines', () => {
    const files = [
      ...yamlFiles(path.join(repoRoot, 'config')),
      ...yamlFiles(path.join(repoRoot, 'probes')),
      ...yamlFiles(path.join(repoRoot, 'test')),
    ];
    let read = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      let ok = false;
      try {
        parse(text);
        ok = true;
      } catch {}
      // A file the full parser rejects must be declined: its error (with the line) is the full parser's to word.
      if (!ok) expect(parsePlainYaml(text), file).toBeUndefined();
      else if (agrees(text)) read++;
    }
    // Most of them are plain: the fast path is really taken.
    expect(read).toBeGreaterThan(files.length / 2);
  });

  it('resolves plain scalars by the YAML 1.2 core schema', () => {
    const scalars = [
      '~',
      'null',
      'Null',
      'NULL',
      'true',
      'True',
      'FALSE',
      'yes',
      'on',
      '0o17',
      '017',
      '0x1F',
      '-12',
      '+5',
      '1.5',
      '1.',
      '.5',
      '1e3',
      '-2.5E-2',
      '.inf',
      '-.Inf',
      '.nan',
      '10s',
      '5%',
      '0.05',
      '1_000',
      'p0',
      'http://a.b:80/x?y=[1]',
      'a#b',
      "it's",
      'a "q"',
      '-5s',
      '999999999999999999999',
    ];
    for (const s of scalars) {
      expect(agrees(`v: ${s}\n`), s).toBe(true);
      expect(agrees(`- ${s}\n`), s).toBe(true);
    }
  });

  it('reads nested blocks, compact lists, comments and quoted scalars', () => {
    const texts = [
      '- id: a\n  kind: http\n  labels:\n    team: x\n  alert:\n    channels:\n    - ops\n    - "dev"\n- id: b\n',
      '# head\nservice:\n  port: 8080 # the port\n\n  name: \'vigil\'\nprobes: {}\nlist: []\nempty:\nlast: "a # b"  # c\n',
      '-\n- a\n-   x: 1\n    y: 2\n- - \n',
      'a:\n  - b:\n      c: [ ]\n    d: { }\n',
      '  - indented: root\n  - two\n',
      'k: v\n   # comment deeper\nk2: v2\n',
    ];
    for (const t of texts) agrees(t);
    expect(parsePlainYaml(texts[0]!)).toStrictEqual(parse(texts[0]!));
    expect(parsePlainYaml(texts[1]!)).toStrictEqual(parse(texts[1]!));
  });

  it('declines what it does not fully read', () => {
    const outside = [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: [1, 2]\n',
      'a: {b: 1}\n',
      'a: |\n  text\n',
      'a: >-\n  text\n',
      'a: long\n  continued\n',
      'a: "multi\n  line"\n',
      'a: "esc\\n"\n',
      "a: 'it''s'\n",
      'a: 1\na: 2\n',
      '--- \na: 1\n',
      'a: 1\n---\nb: 2\n',
      '%YAML 1.1\n---\na: yes\n',
      'a:\tb\n',
      'a: 1\r\nb: 2\r\n',
      '"quoted key": 1\n',
      '? complex\n: key\n',
      '200: ok\n',
      'true: x\n',
      'null: x\n',
      '__proto__: x\n',
      'a: b: c\n',
      'a: b:\n',
      'a: - b\n',
      'a: @x\n',
      'a: `x\n',
      'a: "x" y\n',
      'a: "open\n',
      '- a\nb: 1\n',
      'a: 1\n  b: 2\n',
      '',
      '# only a comment\n',
      'scalar\n',
    ];
    for (const t of outside) expect(parsePlainYaml(t), JSON.stringify(t)).toBeUndefined();
  });
});
