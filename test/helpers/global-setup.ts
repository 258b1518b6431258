import { ensureBuilt } from './build.js';

/**
 * Runs once, before any test file: the tests that start `node dist/main.js` share one dist/. Built
 * here and nowhere else, so no file compiles into it while another runs the service from it; under
 * `npm test` (which has just built) this only checks dates.
 */
export default function setup(): void {
  ensureBuilt();
}
