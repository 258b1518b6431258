/**
 * Byte sizes as people write them in definitions: `512KiB`, `1MiB`, `100MB`, `2GB`. Binary units
 * (KiB, MiB, GiB) count in 1024s, decimal ones (KB, MB, GB) in 1000s, as storage vendors bill them.
 */
const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** The pattern config schemas use for a size: a number and a unit, no space. */
export const SIZE_PATTERN = '^\\d+(\\.\\d+)?(B|KB|MB|GB|KiB|MiB|GiB)$';
const SIZE = new RegExp(SIZE_PATTERN);

/** Parses a size such as `1MiB` into whole bytes (a fraction of a byte rounds down); undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text);
  if (!m) return undefined;
  const name = m[2] ?? '';
  const unit = Object.hasOwn(UNITS, name) ? UNITS[name] : undefined;
  if (unit === undefined) return undefined;
  return Math.floor(Number(text.slice(0, -name.length)) * unit);
}

/** Like parseSize, for values the schema already validated. */
export function bytes(text: string): number {
  const v = parseSize(text);
  if (v === undefined) throw new TypeError(`not a size: ${text}`);
  return v;
}

/** Bytes for people: `1 MiB`, `100 MB`, `1.5 KiB`, `17 B` (binary units when the count is a whole number of them). */
export function formatSize(n: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const size = UNITS[unit] ?? 1;
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  for (const unit of ['GB', 'MB', 'KB'] as const) {
    const size = UNITS[unit] ?? 1;
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} B`;
}
