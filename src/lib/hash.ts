/**
 * FNV-1a 32-bit with murmur3's finaliser: stable and fast, and ids that differ only in their last
 * characters (`probe-1`, `probe-2`) still land far apart — what spreading probes over a minute needs.
 */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
