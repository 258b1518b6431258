const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns something other than `undefined` or `false`, and returns that. A throw
 * counts as "not yet" (a server still starting refuses connections); after `ms` it fails naming
 * `what`, the last error, and whatever `detail()` adds (a service's log tail).
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
  detail?: () => string,
): Promise<T> {
  const end = Date.now() + ms;
  // Polls fast at first (most conditions hold within milliseconds), then backs off to a cap.
  const cap = Math.min(100, Math.max(10, ms / 200));
  let pause = 5;
  let lastError: unknown;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch((err: unknown) => {
        lastError = err;
        return undefined;
      });
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) {
      const why = lastError === undefined ? '' : `; last error: ${(lastError as Error).message ?? String(lastError)}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}${detail ? `\n${detail()}` : ''}`);
    }
    await sleep(pause);
    pause = Math.min(cap, pause * 2);
  }
}
