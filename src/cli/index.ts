/**
 * Loaded when `vigil run-once` runs, not before: it pulls in every prober, and `vigil --help`,
 * `--version` and `token` should answer at once.
 */
export const loadRunOnce = () => import('./run-once.js');
export type { RunOnceDeps } from './run-once.js';
export { newToken, tokenText } from './token.js';
export { USAGE } from './usage.js';
