import { describe, expect, it } from 'vitest';
import { bytes, formatSize, parseSize } from '../../src/lib/size.js';

describe('size', () => {
  it('reads binary units in 1024s and decimal units in 1000s', () => {
    expect(parseSize('1MiB')).toBe(1_048_576);
    expect(parseSize('100MB')).toBe(100_000_000);
    expect(parseSize('512KiB')).toBe(524_288);
    expect(parseSize('2KB')).toBe(2_000);
    expect(parseSize('5GiB')).toBe(5 * 1024 ** 3);
    expect(parseSize('1.5KiB')).toBe(1_536);
    expect(parseSize('17B')).toBe(17);
  });

  it('rejects what is not a size: no unit, a space, a lowercase or unknown unit, a sign', () => {
    for (const text of ['', '100', '1 MiB', '1mib', '1mb', '1TB', '-1MB', 'MB', '1.MB', '__proto__']) {
      expect(parseSize(text), text).toBeUndefined();
    }
  });

  it('bytes() throws on a value the schema should have refused', () => {
    expect(bytes('1KiB')).toBe(1024);
    expect(() => bytes('lots')).toThrow(/not a size: lots/);
  });

  it('formats sizes for people', () => {
    expect(formatSize(1_048_576)).toBe('1 MiB');
    expect(formatSize(20 * 1_048_576)).toBe('20 MiB');
    expect(formatSize(100_000_000)).toBe('100 MB');
    expect(formatSize(1_024)).toBe('1 KiB');
    expect(formatSize(1_536)).toBe('1.54 KB');
    expect(formatSize(1_500)).toBe('1.5 KB');
    expect(formatSize(17)).toBe('17 B');
  });
});
