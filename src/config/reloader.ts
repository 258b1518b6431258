import type { Logger } from '../lib/logger.js';
import { ConfigError, type LoadedConfig } from './load.js';
import { redact } from './redact.js';
import { restartOnlyChanges } from './reload.js';
import type { ServiceConfig } from './schema.js';

/** What a reload did, or why it did nothing. */
export type ReloadResult =
  | {
      ok: true;
      probes: { total: number; added: string[]; removed: string[]; changed: string[] };
      channels: { added: string[]; removed: string[]; changed: string[] };
      /**
       * Always empty: a reload that changes a key only a restart applies is refused instead (kept
       * so clients that read it keep working).
       */
      restartRequired: string[];
      ms: number;
    }
  | { ok: false; code: 'VIGIL_ERR_CONFIG' | 'VIGIL_ERR_RESTART_REQUIRED'; problems: string[] };

export interface ReloaderDeps {
  logger: Logger;
  /** Reads the config files again; without it a reload is refused. */
  read?: () => LoadedConfig;
  /** The config running now. */
  running(): { service: ServiceConfig; probes: ReadonlyArray<{ id: string }> };
  /** Secret values already known, to hide in the problems a refusal lists (with the new config's own). */
  knownSecrets(): Iterable<string>;
  /**
   * Builds what the new config needs that can fail (channel clients) without changing anything:
   * throws for a refusal (its message becomes the problem), or returns the step that swaps the new
   * config in — synchronous, so no run, page or request sees half of it.
   */
  prepare(next: LoadedConfig): { apply(): { added: string[]; removed: string[]; changed: string[] } };
  /** Applied or refused. */
  reloaded(ok: boolean): void;
}

/**
 * Config reload (SIGHUP, `POST /api/v1/admin/reload`): validate anew, refuse the whole change when a
 * key only a restart applies changed, else swap in what can change while running. One at a time: a
 * SIGHUP during an API reload waits for it, then reads the files again.
 */
export function createReloader(deps: ReloaderDeps): (actor: string) => Promise<ReloadResult> {
  const log = deps.logger.child({ module: 'reload' });
  let reloading: Promise<ReloadResult> | undefined;

  async function reload(actor: string): Promise<ReloadResult> {
    const t0 = performance.now();
    if (!deps.read) {
      return { ok: false, code: 'VIGIL_ERR_CONFIG', problems: ['reload is not available: vigil was started without a config loader'] };
    }
    let next: LoadedConfig;
    try {
      next = deps.read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      deps.reloaded(false);
      log.warn({ actor, problems: err.problems }, 'config reload refused; the running config stays');
      return { ok: false, code: 'VIGIL_ERR_CONFIG', problems: [...err.problems] };
    }
    const refuse = (code: 'VIGIL_ERR_CONFIG' | 'VIGIL_ERR_RESTART_REQUIRED', problems: string[]): ReloadResult => {
      deps.reloaded(false);
      const shown = redact(problems, new Set([...deps.knownSecrets(), ...next.secrets]));
      log.warn({ actor, code, problems: shown }, 'config reload refused; the running config stays');
      return { ok: false, code, problems: shown };
    };
    const running = deps.running();
    // All or nothing: a key only a restart applies refuses the whole reload rather than half of it.
    const restart = restartOnlyChanges(running.service, next.service);
    if (restart.length > 0) return refuse('VIGIL_ERR_RESTART_REQUIRED', restart);
    let step: ReturnType<ReloaderDeps['prepare']>;
    try {
      step = deps.prepare(next);
    } catch (err) {
      return refuse('VIGIL_ERR_CONFIG', [`channels: ${(err as Error).message}`]);
    }
    const before = new Map(running.probes.map((p) => [p.id, JSON.stringify(p)]));
    const after = new Map(next.probes.map((p) => [p.id, JSON.stringify(p)]));
    const channels = step.apply();
    const result: ReloadResult = {
      ok: true,
      probes: {
        total: next.probes.length,
        added: [...after.keys()].filter((id) => !before.has(id)),
        removed: [...before.keys()].filter((id) => !after.has(id)),
        changed: [...after].filter(([id, h]) => before.has(id) && before.get(id) !== h).map(([id]) => id),
      },
      channels,
      restartRequired: [],
      ms: Math.round(performance.now() - t0),
    };
    deps.reloaded(true);
    log.info({ actor, ...result.probes, channels, ms: result.ms }, 'config reloaded');
    return result;
  }

  return (actor) => {
    const run = (reloading ?? Promise.resolve()).catch(() => undefined).then(() => reload(actor));
    reloading = run;
    return run;
  };
}
