import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { type LoadedConfig, redact } from './config/index.js';
import { type Clock, systemClock } from './lib/clock.js';
import { ms } from './lib/duration.js';
import type { Logger } from './lib/logger.js';
import { createMetrics, FastRegistry, type Metrics } from './metrics/index.js';
import { type ProbeDefinition, proberFor } from './probers/index.js';
import { type CronDriver, createScheduler, nodeCronDriver, type Scheduler } from './scheduler/index.js';
import { createServer, type HealthCheck } from './server/index.js';
import { createSqliteStore, type RunRecord, type Store } from './store/index.js';

export interface AppDeps {
  config: LoadedConfig;
  logger: Logger;
  clock?: Clock;
  /** Tests drive cron schedules with a fake clock through their own driver. */
  cron?: CronDriver;
  registry?: Registry;
}

/** A wired vigil: start it, stop it, reach its parts. */
export interface App {
  readonly server: FastifyInstance;
  readonly store: Store;
  readonly scheduler: Scheduler;
  readonly metrics: Metrics;
  readonly registry: Registry;
  /** Listens and starts scheduling; resolves to the bound address. */
  start(): Promise<string>;
  /** SIGTERM: stop scheduling, let runs in flight finish within the bound, flush, close. */
  stop(): Promise<void>;
}

const PRUNE_EVERY_MS = 3_600_000;
const HEARTBEAT_STALE_MS = 30_000;

/** The composition root: every part is made here from its dependencies, and nowhere else. */
export function createApp(deps: AppDeps): App {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const registry = deps.registry ?? new FastRegistry();
  const cfg = config.service;
  const probesDir = path.resolve(config.baseDir, cfg.probes.dir);
  const dbPath = cfg.storage.sqlite.path === ':memory:' ? ':memory:' : path.resolve(config.baseDir, cfg.storage.sqlite.path);

  const store = createSqliteStore({
    path: dbPath,
    clock,
    logger,
    batchRows: cfg.storage.batch.maxRows,
    batchIntervalMs: ms(cfg.storage.batch.interval),
  });
  const metrics = createMetrics({
    registry,
    durationBuckets: [...cfg.metrics.durationBuckets],
    storeStats: () => ({ ...store.stats(), queued: store.health().queued }),
  });
  const runLog = logger.child({ module: 'run' });

  // The whole flow of one result, in order: measure (done) → metrics → store → log.
  const onResult = (run: RunRecord) => {
    metrics.observeRun(run);
    store.append(run);
    const fields = {
      probe: run.probeId,
      kind: run.kind,
      ok: run.ok,
      ms: Math.round(run.durationMs),
      attempts: run.attempts,
      trigger: run.trigger,
    };
    if (run.ok) runLog.info(fields, 'probe run');
    else runLog.warn({ ...fields, code: run.code, reason: run.message }, 'probe run');
  };

  const scheduler = createScheduler({
    clock,
    logger,
    cron: deps.cron ?? nodeCronDriver(logger),
    probesDir,
    maxSpreadMs: cfg.scheduler.spread ? 60_000 : 0,
    maxConcurrent: cfg.scheduler.maxConcurrent,
    metrics,
    stateFor: (id) => ({ get: <T>() => store.probeState(id) as T | undefined, set: (v) => store.setProbeState(id, v) }),
    onResult,
  });

  let probes: readonly ProbeDefinition[] = config.probes;
  const redactDef = <T>(v: T) => redact(v, config.secrets);

  const health = (): Record<string, HealthCheck> => {
    const db = store.health();
    const sched = scheduler.health();
    const age = clock.now() - sched.lastBeat;
    return {
      database: { ok: db.writable, queued: db.queued, ...(db.error ? { error: db.error } : {}) },
      scheduler: {
        ok: sched.running && age < HEARTBEAT_STALE_MS,
        inFlight: sched.inFlight,
        lastBeat: new Date(sched.lastBeat).toISOString(),
        ...(sched.running ? {} : { error: 'stopped' }),
        ...(age >= HEARTBEAT_STALE_MS ? { error: `no heartbeat for ${Math.round(age / 1000)}s` } : {}),
      },
    };
  };

  const server = createServer({ logger, registry, store, scheduler, probes: () => probes, redact: redactDef, health });

  let pruneTimer: ReturnType<Clock['setTimeout']> | undefined;
  const prune = () => {
    store
      .prune(clock.now() - ms(cfg.storage.retention.runs))
      .catch((err) => logger.error({ err }, 'prune failed'))
      .finally(() => {
        pruneTimer = clock.setTimeout(prune, PRUNE_EVERY_MS);
      });
  };

  const declare = (list: readonly ProbeDefinition[]) => {
    metrics.setProbes(
      list.map((p) => ({ id: p.id, kind: p.kind, values: proberFor(p.kind).values(p as never), last: store.latest(p.id) })),
    );
    scheduler.setProbes(list);
    probes = list;
  };

  return {
    server,
    store,
    scheduler,
    metrics,
    registry,
    async start() {
      declare(probes);
      prune();
      const address = await server.listen({ host: cfg.service.host, port: cfg.service.port });
      logger.info({ address, probes: probes.length, files: config.files.length }, 'vigil started');
      return address;
    },
    async stop() {
      if (pruneTimer !== undefined) clock.clearTimeout(pruneTimer);
      await scheduler.stop(ms(cfg.service.shutdownTimeout));
      await server.close();
      await store.close();
      logger.info('vigil stopped');
    },
  };
}
