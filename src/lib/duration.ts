const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** The pattern config schemas use for a duration: `250ms`, `10s`, `5m`, `1h30m`, `90d`. */
export const DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$';

/** Parses a duration such as `1h30m` into milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text.length === 0) return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const m = PART.exec(text);
    if (!m) return undefined;
    const unit = UNITS[m[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return total;
}

/** Like parseDuration, for values the schema already validated. */
export function ms(text: string): number {
  const v = parseDuration(text);
  if (v === undefined) throw new TypeError(`not a duration: ${text}`);
  return v;
}

/** Formats milliseconds for people: `950ms`, `12.3s`, `4m10s`, `2h5m`. */
export function formatDuration(millis: number): string {
  if (millis < 1000) return `${Math.round(millis)}ms`;
  if (millis < 60_000) return `${(millis / 1000).toFixed(millis < 10_000 ? 2 : 1)}s`;
  const totalS = Math.round(millis / 1000);
  if (totalS < 3600) return `${Math.floor(totalS / 60)}m${totalS % 60 ? `${totalS % 60}s` : ''}`;
  const m = Math.round(totalS / 60);
  return `${Math.floor(m / 60)}h${m % 60 ? `${m % 60}m` : ''}`;
}
