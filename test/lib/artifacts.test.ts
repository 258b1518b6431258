import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactFile, artifactKey, keptFile } from '../../src/lib/artifacts.js';

// Which file an artifact request reaches: only paths built from parts of the shapes vigil makes.

const DATA = '/data';
const KEY = artifactKey(Date.UTC(2026, 11, 3), '0a1b2c3d');

describe('keptFile', () => {
  it('builds the path of a kept file from a probe id, a run key and a name', () => {
    expect(keptFile(DATA, 'login', KEY, 'screenshot.png')).toBe(path.join(DATA, 'artifacts', 'login', KEY, 'screenshot.png'));
  });

  it('refuses a probe id that is a path step, a key or a name of any other shape', () => {
    for (const [probe, key, name] of [
      ['..', KEY, 'screenshot.png'],
      ['.', KEY, 'screenshot.png'],
      ['a/b', KEY, 'screenshot.png'],
      ['login', '..', 'screenshot.png'],
      ['login', '1000-aaaaaaaa', 'screenshot.png'],
      ['login', KEY, '../vigil.db'],
      ['login', KEY, '.trace-raw.zip'],
    ] as const) {
      expect(keptFile(DATA, probe, key, name), `${probe} ${key} ${name}`).toBeUndefined();
    }
  });
});

describe('artifactFile', () => {
  it('serves only a name the run listed', () => {
    const details = { artifacts: { key: KEY, files: ['screenshot.png', 'trace.zip'] } };
    expect(artifactFile(DATA, 'login', details, 'trace.zip')).toBe(path.join(DATA, 'artifacts', 'login', KEY, 'trace.zip'));
    expect(artifactFile(DATA, 'login', details, 'other.png')).toBeUndefined();
    expect(artifactFile(DATA, 'login', { artifacts: { key: 'nope', files: ['trace.zip'] } }, 'trace.zip')).toBeUndefined();
    expect(artifactFile(DATA, 'login', undefined, 'trace.zip')).toBeUndefined();
  });
});
