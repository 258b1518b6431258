import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { createAlerting, type EscalationPolicy } from './alerting/index.js';
import { createLeadership } from './cluster/leader.js';
import { ConfigError, createSecretBook, type LoadedConfig, redact, restartOnlyChanges } from './config/index.js';
import { type Clock, systemClock } from './lib/clock.js';
import { ms } from './lib/duration.js';
import { type Logger, setLogSecrets } from './lib/logger.js';
import { own } from './lib/own.js';
import { signAction } from './lib/signing.js';
import { createMetrics, FastRegistry, type Metrics } from './metrics/index.js';
import { createChannelTests } from './notify/channel-tests.js';
import { createHeartbeat } from './notify/heartbeat.js';
import { type Channel, createChannels, createOutboxWorker, swapChannels } from './notify/index.js';
import { oncallAt, type Person } from './oncall/index.js';
import { type AnyProber, type ProbeDefinition, proberFor, probers } from './probers/index.js';
import { buildReport, buildStatusPage, type ReportConfig, setupOf } from './report/index.js';
import { type CronDriver, createScheduler, nodeCronDriver, type Scheduler } from './scheduler/index.js';
import type { ApiToken } from './server/auth.js';
import { createServer, type HealthCheck } from './server/index.js';
import { overridesOf } from './server/oncall-routes.js';
import { createPostgresStore, createSelfBackup, createSqliteStore, type RunRecord, type Store } from './store/index.js';

export interface AppDeps {
  config: LoadedConfig;
  logger: Logger;
  clock?: Clock;
  /** Reads the config again (SIGHUP, `POST /api/v1/admin/reload`); without it reload is refused. */
  reloadConfig?: () => LoadedConfig;
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
  /** Validates the config anew and swaps in what can change while running; keeps the old one on any problem. */
  reload(actor: string): Promise<ReloadResult>;
}

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

const PRUNE_EVERY_MS = 3_600_000;
/** Pending connections the kernel holds for vigil to accept (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;
const HEARTBEAT_STALE_MS = 30_000;
/** A notification waiting longer than this means delivery is stuck (a provider down, a bad token). */
const OUTBOX_STUCK_MS = 15 * 60_000;

/** The composition root: every part is made here from its dependencies, and nowhere else. */
export function createApp(deps: AppDeps): App {
  const { logger } = deps;
  let config = deps.config;
  const clock = deps.clock ?? systemClock;
  const registry = deps.registry ?? new FastRegistry();
  // Reassigned by reload(): everything below reads `cfg.x` when it runs, not when it was built.
  let cfg = config.service;
  const probesDir = path.resolve(config.baseDir, cfg.probes.dir);
  const dbPath = cfg.storage.sqlite.path === ':memory:' ? ':memory:' : path.resolve(config.baseDir, cfg.storage.sqlite.path);

  const common = {
    clock,
    logger,
    batchRows: cfg.storage.batch.maxRows,
    batchIntervalMs: ms(cfg.storage.batch.interval),
    rollups: { sketchValues: Object.values(probers).flatMap((p) => (p as AnyProber).percentiles ?? []) },
  };
  // PostgreSQL when configured (several instances, one database), else the embedded SQLite file.
  const pg = cfg.storage.postgres;
  const store = pg
    ? createPostgresStore({ ...common, url: pg.url, timeoutMs: ms(pg.timeout), poolSize: pg.poolSize })
    : createSqliteStore({ ...common, path: dbPath });
  const metrics = createMetrics({
    registry,
    durationBuckets: [...cfg.metrics.durationBuckets],
    ...(cfg.service.location ? { location: cfg.service.location } : {}),
    storeStats: () => ({ ...store.stats(), queued: store.health().queued }),
    openIncidents: () => {
      const counts: Record<string, number> = {};
      for (const i of store.alerts.unresolvedIncidents()) counts[i.severity] = (counts[i.severity] ?? 0) + 1;
      return counts;
    },
    outboxStats: () => store.alerts.outboxStats(clock.now()),
    heldPages: () => store.alerts.held(),
    onCall: () => {
      const now = clock.now();
      const all = store.alerts.overrides(now - 1);
      return Object.fromEntries(Object.entries(cfg.schedules).map(([id, s]) => [id, oncallAt(s, overridesOf(all, id), now)?.person]));
    },
  });
  const people = () => cfg.people as Record<string, Person>;
  const maintenanceOf = (c: typeof cfg) => c.alerting.maintenance.map((w) => ({ ...w, durationMs: ms(w.duration) }));
  let maintenance = maintenanceOf(cfg);
  /** Read on every request: a reload replaces the contents, and the routes see the new tokens at once. */
  const tokens: ApiToken[] = cfg.auth.tokens.map((t) => ({ ...t }));
  // Every form of every secret ever loaded (a value from the config before a reload is still hidden):
  // per probe for its results, all of them on every way out (log lines too).
  const secretBook = createSecretBook(config, (all) => setLogSecrets(logger, all));

  /** Reassigned by reload() with `channels`, which it changes in place (the worker reads it at every scan). */
  let channelConfig = cfg.channels as Record<string, { type: string; testSchedule?: string }>;
  const cronDriver = deps.cron ?? nodeCronDriver(logger);
  const baseUrl = cfg.alerting.baseUrl.replace(/\/$/, '');
  const linkSecret = cfg.interactions.linkSecret;
  const channels = createChannels(channelConfig, { logger, clock });
  metrics.setChannels([...channels.keys()]);
  const delivery = cfg.alerting.delivery;
  // Several instances share a PostgreSQL database: one leader (by lease) evaluates alert rules over
  // every instance's runs and delivers the outbox; all of them probe and store their runs.
  const shared = pg !== undefined;
  const instance = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const worker = createOutboxWorker({
    ...(shared ? { claim: { by: instance, forMs: ms(cfg.alerting.delivery.timeout) + 2_000 } } : {}),
    redactor: () => secretBook.all(),
    store: store.alerts,
    channels,
    clock,
    logger,
    observer: { outcome: (c, o) => metrics.notification(c, o), latency: (c, s) => metrics.deliveryLatency(c, s) },
    baseUrl,
    ...(cfg.alerting.dashboardUrl ? { dashboardUrl: cfg.alerting.dashboardUrl } : {}),
    maxAgeMs: ms(delivery.maxAge),
    sendTimeoutMs: ms(delivery.timeout),
    minBackoffMs: ms(delivery.minBackoff),
    maxBackoffMs: ms(delivery.maxBackoff),
    concurrency: delivery.concurrency,
    pollIntervalMs: ms(delivery.pollInterval),
    people: (id) => {
      const p = own(people(), id);
      return p
        ? { id, name: p.name, ...(p.email ? { email: p.email } : {}), ...(p.slack ? { slack: p.slack } : {}), pagerduty: p.pagerduty }
        : undefined;
    },
    ...(linkSecret
      ? {
          signLink: (incidentId: number, action: 'ack' | 'resolve') =>
            `${baseUrl}/act/${signAction({ incidentId, action, expiresAt: clock.now() + ms(cfg.interactions.linkTtl) }, linkSecret)}`,
        }
      : {}),
  });
  const alerting = createAlerting({
    store: store.alerts,
    clock,
    logger,
    probes: () => probes,
    redactorFor: (def) => secretBook.forProbe(def),
    // Getters: the engine reads these on every run, so a reload changes them in place.
    get flapping() {
      return cfg.alerting.flapping;
    },
    get maintenance() {
      return maintenance;
    },
    sweepIntervalMs: ms(cfg.alerting.sweepInterval),
    onQueued: () => worker.wake(),
    onMuted: (channel) => metrics.notification(channel, 'muted'),
    escalation: {
      policies: () => cfg.escalation as Record<string, EscalationPolicy>,
      targets: () => ({
        channels: Object.fromEntries(Object.entries(channelConfig).map(([n, c]) => [n, c.type])),
        people: people(),
        onCall: (schedule, now) => {
          const s = own(cfg.schedules, schedule);
          return s ? oncallAt(s, overridesOf(store.alerts.overrides(now - 1), schedule), now)?.person : undefined;
        },
      }),
    },
    observer: {
      escalated: (p) => metrics.escalated(p),
      acknowledged: (s) => metrics.acknowledged(s),
      resolved: (s) => metrics.resolved(s),
    },
  });
  const runLog = logger.child({ module: 'run' });

  // The whole flow of one result, in order: measure (done) → metrics → store → alert rules → log.
  const onResult = (result: RunRecord) => {
    // Where it ran: several instances write to one database, and the report and quorum rules read it.
    const run = cfg.service.location && result.location === undefined ? { ...result, location: cfg.service.location } : result;
    metrics.observeRun(run);
    store.append(run);
    // Shared: the leader reads every instance's runs from the database (runFeed) and judges them there.
    if (!shared) alerting.observe(run);
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
    cron: cronDriver,
    probesDir,
    maxSpreadMs: cfg.scheduler.spread ? 60_000 : 0,
    maxConcurrent: cfg.scheduler.maxConcurrent,
    metrics,
    stateFor: (id) => ({ get: <T>() => store.probeState(id) as T | undefined, set: (v) => store.setProbeState(id, v) }),
    redactorFor: (def) => secretBook.forProbe(def),
    onResult,
  });

  let probes: readonly ProbeDefinition[] = config.probes;
  const redactDef = <T>(v: T) => redact(v, secretBook.interpolated());

  const health = (): Record<string, HealthCheck> => {
    const db = store.health();
    const cluster: Record<string, HealthCheck> = shared
      ? { leader: { ok: true, instance, leader: leadership.isLeader(), holder: leadership.holder() ?? null } }
      : {};
    const outbox = store.alerts.outboxStats(clock.now());
    // Held pages are pages not going out: unhealthy (and no heartbeat) until their channel is back.
    const held = store.alerts.held();
    const heldCount = held.reduce((n, h) => n + h.count, 0);
    const sched = scheduler.health();
    const age = clock.now() - sched.lastBeat;
    return {
      database: { ok: db.writable, queued: db.queued, ...(db.error ? { error: db.error } : {}) },
      ...cluster,
      scheduler: {
        ok: sched.running && age < HEARTBEAT_STALE_MS,
        inFlight: sched.inFlight,
        lastBeat: new Date(sched.lastBeat).toISOString(),
        ...(sched.running ? {} : { error: 'stopped' }),
        ...(age >= HEARTBEAT_STALE_MS ? { error: `no heartbeat for ${Math.round(age / 1000)}s` } : {}),
      },
      outbox: {
        ok: outbox.oldestPendingMs < OUTBOX_STUCK_MS && heldCount === 0,
        pending: outbox.pending,
        oldestPendingSeconds: Math.round(outbox.oldestPendingMs / 1000),
        dead: outbox.dead,
        held: heldCount,
        heldChannels: held.map((h) => h.channel),
        ...(outbox.oldestPendingMs >= OUTBOX_STUCK_MS
          ? { error: `a notification has waited ${Math.round(outbox.oldestPendingMs / 60_000)} min` }
          : {}),
        ...(heldCount > 0 ? { error: heldError(held) } : {}),
      },
    };
  };

  const server = createServer({
    logger,
    registry,
    store,
    scheduler,
    probes: () => probes,
    redact: redactDef,
    redactor: () => secretBook.all(),
    health,
    tokens,
    // Getters: the routes read them per request, so a reload changes who may read at once.
    access: {
      get reads() {
        return cfg.auth.reads;
      },
      get metrics() {
        return cfg.auth.metrics;
      },
    },
    rateLimit: cfg.auth.rateLimit,
    audit: store.audit,
    now: () => clock.now(),
    runbooks: { dir: path.resolve(config.baseDir, 'docs/runbooks') },
    admin: {
      audit: store.audit,
      reload: (actor) => app.reload(actor),
      clock,
    },
    // A name read through `${file:…}` is a secret: the on-call answers show `<secret>`, like the status page.
    oncall: { clock, alerts: store.alerts, schedules: () => cfg.schedules, people: () => redactDef(people()) },
    actions: {
      clock,
      ...(linkSecret ? { linkSecret } : {}),
      ...(cfg.interactions.slackSigningSecret ? { slackSigningSecret: cfg.interactions.slackSigningSecret } : {}),
      acknowledge: (id, actor) => alerting.acknowledge(id, actor),
      resolve: (id, actor) => alerting.resolve(id, actor),
      incident: (id) => store.alerts.incident(id),
    },
    alerting: {
      clock,
      alerts: store.alerts,
      acknowledge: (id, actor) => alerting.acknowledge(id, actor),
      resolve: (id, actor) => alerting.resolve(id, actor),
      silencesChanged: () => alerting.silencesChanged(),
      channels: () => Object.fromEntries(Object.entries(channelConfig).map(([n, c]) => [n, c.type])),
      testChannel: (name) => channelTests.send(name),
      targets: () => probes.map((p) => ({ id: p.id, labels: p.labels })),
      maintenance: () => maintenance,
    },
    report: {
      // Redacted whole: a probe's target (a URL with a key in it) and run messages are config-derived.
      report: (q) =>
        buildReport(
          {
            service: cfg.service.name,
            clock,
            store,
            probes: () => probes,
            config: cfg.report as ReportConfig,
            setup: () =>
              setupOf({
                channels: channelConfig,
                schedules: cfg.schedules,
                escalation: cfg.escalation as Record<string, EscalationPolicy>,
              }),
          },
          q,
        ).then(redactDef),
      statusPage: () =>
        buildStatusPage({
          service: cfg.service.name,
          clock,
          store,
          probes: () => probes,
          isRunning: (id) => scheduler.isRunning(id),
          held: () => store.alerts.held(),
          onCall: (now) => {
            const all = store.alerts.overrides(now - 1);
            return Object.entries(cfg.schedules).map(([schedule, s]) => {
              const on = oncallAt(s, overridesOf(all, schedule), now);
              return {
                schedule,
                person: on?.person ?? null,
                name: on === undefined ? null : (own(people(), on.person)?.name ?? on.person),
                until: on === undefined || !Number.isFinite(on.until) ? null : new Date(on.until).toISOString(),
              };
            });
          },
          reportUrl: '/api/v1/report?format=html',
        }).then(redactDef),
    },
  });

  const channelTests = createChannelTests({
    store: store.alerts,
    clock,
    cron: cronDriver,
    schedules: testSchedules(channelConfig),
    waitMs: Math.max(60_000, ms(delivery.timeout) * 3),
    wake: () => worker.wake(),
    // A test page's failure quotes the receiver's answer, which may echo the channel's URL or token.
    onResult: (run) => onResult(secretBook.all().value(run)),
  });

  const heartbeat = cfg.oncall.heartbeatUrl
    ? createHeartbeat({
        url: cfg.oncall.heartbeatUrl,
        intervalMs: ms(cfg.oncall.heartbeatInterval),
        clock,
        logger,
        healthy: () => {
          const h = health();
          return h.scheduler?.ok === true && h.outbox?.ok === true;
        },
        onResult: (ok) => metrics.heartbeat(ok),
      })
    : undefined;

  // On PostgreSQL the database is the operator's to back up (pg_dump, WAL archiving): no file copy.
  const selfBackup =
    cfg.backup.enabled && !pg
      ? createSelfBackup({
          source: store,
          dir: path.resolve(config.baseDir, cfg.backup.dir),
          intervalMs: ms(cfg.backup.interval),
          keep: cfg.backup.keep,
          clock,
          logger,
          onResult: (r) => metrics.selfBackup(r.ok, r.at / 1000, r.bytes),
        })
      : undefined;

  let pruneTimer: ReturnType<Clock['setTimeout']> | undefined;
  let warmed = false;
  // Housekeeping, hourly: roll completed hours (and days) up first, then prune raw runs past their
  // retention and rollups past theirs, so nothing is pruned before it is summarised.
  const prune = () => {
    Promise.resolve()
      .then(() => store.rollups.rollUp(clock.now()))
      // Once per start: the report window's day rows parsed ahead of the first report.
      .then(() => (warmed ? 0 : store.rollups.warm(clock.now() - (cfg.report.days + 1) * 86_400_000, clock.now())))
      .then(() => {
        warmed = true;
      })
      .then(() => store.prune(clock.now() - ms(cfg.storage.retention.runs)))
      .then(() => store.rollups.prune())
      .then(() => store.audit.prune(clock.now() - ms(cfg.storage.retention.audit)))
      .catch((err) => logger.error({ err }, 'rollup or prune failed'))
      .finally(() => {
        pruneTimer = clock.setTimeout(prune, PRUNE_EVERY_MS);
      });
  };

  const location = cfg.service.location;
  /** A probe with `locations:` runs only on instances at one of them; one without, everywhere. */
  const runsHere = (p: ProbeDefinition) => !p.locations?.length || (location !== undefined && p.locations.includes(location));
  const declare = (all: readonly ProbeDefinition[]) => {
    const list = all.filter(runsHere);
    if (list.length < all.length)
      logger.info(
        { location: location ?? null, here: list.length, elsewhere: all.length - list.length },
        'probes for other locations not scheduled here',
      );
    metrics.setProbes([
      ...list.map((p) => ({ id: p.id, kind: p.kind, values: proberFor(p.kind).values(p as never), last: store.latest(p.id) })),
      ...channelTests.probeIds.map((id) => ({ id, kind: 'channel-test', values: ['delivery_ms'], last: store.latest(id) })),
    ]);
    scheduler.setProbes(list);
    probes = all;
  };

  /** What only the leader does; a single instance (SQLite) is always the leader. */
  let feedTimer: ReturnType<Clock['setTimeout']> | undefined;
  let leading = false;
  const leaderWork = {
    async gain() {
      leading = true;
      metrics.leader(true);
      await alerting.seed((probeId, since, limit) => store.runs({ probeId, since, limit }));
      if (shared) {
        // Judge runs written from now on; what came before is in the seeded history.
        let cursor = await store.maxRunId();
        const feed = async () => {
          if (!leading) return;
          let more = false;
          try {
            const rows = await store.runsAfter(cursor, 1_000);
            for (const r of rows) alerting.observe(r);
            if (rows.length > 0) cursor = rows.at(-1)!.id;
            more = rows.length === 1_000;
          } catch (err) {
            logger.warn({ err }, 'reading the run feed failed');
          }
          if (leading) feedTimer = clock.setTimeout(() => void feed(), more ? 0 : ms(cfg.cluster.feedInterval));
        };
        await feed();
      }
      prune();
      alerting.start();
      worker.start();
      channelTests.start();
    },
    async lose() {
      leading = false;
      metrics.leader(false);
      if (feedTimer !== undefined) clock.clearTimeout(feedTimer);
      if (pruneTimer !== undefined) clock.clearTimeout(pruneTimer);
      alerting.stop();
      channelTests.stop();
      await worker.stop(ms(cfg.alerting.delivery.timeout));
    },
  };
  const leadership = createLeadership({
    store,
    name: 'vigil-leader',
    holder: instance,
    ttlMs: ms(cfg.cluster.leaseTtl),
    clock,
    logger,
    onGain: () => leaderWork.gain(),
    onLose: () => leaderWork.lose(),
  });

  /** A channel a reload removed or replaced: its sends in flight finish on it, then its clients close. */
  const retire = (old: Channel) => {
    worker
      .settled(old)
      .then(() => old.close())
      .catch((err) => logger.warn({ err }, 'closing a channel a reload replaced failed'));
  };

  let reloading: Promise<ReloadResult> | undefined;
  const reloadLog = logger.child({ module: 'reload' });
  async function reload(actor: string): Promise<ReloadResult> {
    const t0 = performance.now();
    if (!deps.reloadConfig) {
      return { ok: false, code: 'VIGIL_ERR_CONFIG', problems: ['reload is not available: vigil was started without a config loader'] };
    }
    let next: LoadedConfig;
    try {
      next = deps.reloadConfig();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      metrics.reloaded(false, clock.now() / 1000);
      reloadLog.warn({ actor, problems: err.problems }, 'config reload refused; the running config stays');
      return { ok: false, code: 'VIGIL_ERR_CONFIG', problems: [...err.problems] };
    }
    const refuse = (code: 'VIGIL_ERR_CONFIG' | 'VIGIL_ERR_RESTART_REQUIRED', problems: string[]): ReloadResult => {
      metrics.reloaded(false, clock.now() / 1000);
      const shown = redact(problems, new Set([...secretBook.interpolated(), ...next.secrets]));
      reloadLog.warn({ actor, code, problems: shown }, 'config reload refused; the running config stays');
      return { ok: false, code, problems: shown };
    };
    // All or nothing: a key only a restart applies refuses the whole reload rather than half of it.
    const restart = restartOnlyChanges(cfg, next.service);
    if (restart.length > 0) return refuse('VIGIL_ERR_RESTART_REQUIRED', restart);
    const nextChannels = next.service.channels as typeof channelConfig;
    let swap: ReturnType<typeof swapChannels>;
    try {
      swap = swapChannels(channels, channelConfig, nextChannels, (c) => createChannels(c, { logger, clock }));
    } catch (err) {
      return refuse('VIGIL_ERR_CONFIG', [`channels: ${(err as Error).message}`]);
    }
    const before = new Map(probes.map((p) => [p.id, JSON.stringify(p)]));
    const after = new Map(next.probes.map((p) => [p.id, JSON.stringify(p)]));
    // From here on, one synchronous step: no run, page or request sees half of it.
    config = next;
    cfg = next.service;
    secretBook.learn(next);
    maintenance = maintenanceOf(cfg);
    tokens.splice(0, tokens.length, ...cfg.auth.tokens.map((t) => ({ ...t })));
    channelConfig = nextChannels;
    channels.clear();
    for (const [name, channel] of swap.next) channels.set(name, channel);
    metrics.setChannels([...channels.keys()]);
    channelTests.setSchedules(testSchedules(channelConfig));
    declare(next.probes);
    worker.channelsChanged();
    for (const old of swap.retired) retire(old);
    const result: ReloadResult = {
      ok: true,
      probes: {
        total: next.probes.length,
        added: [...after.keys()].filter((id) => !before.has(id)),
        removed: [...before.keys()].filter((id) => !after.has(id)),
        changed: [...after].filter(([id, h]) => before.has(id) && before.get(id) !== h).map(([id]) => id),
      },
      channels: { added: swap.added, removed: swap.removed, changed: swap.changed },
      restartRequired: [],
      ms: Math.round(performance.now() - t0),
    };
    metrics.reloaded(true, clock.now() / 1000);
    reloadLog.info({ actor, ...result.probes, channels: result.channels, ms: result.ms }, 'config reloaded');
    return result;
  }

  const app: App = {
    server,
    store,
    scheduler,
    metrics,
    registry,
    reload(actor) {
      // One at a time: a SIGHUP during an API reload waits for it, then reads the files again.
      const run = (reloading ?? Promise.resolve()).catch(() => undefined).then(() => reload(actor));
      reloading = run;
      return run;
    },
    async start() {
      declare(probes);
      if (shared) leadership.start();
      else await leaderWork.gain();
      heartbeat?.start();
      selfBackup?.start();
      // A deep accept queue: 2,000 clients connecting at once must not push a load balancer's
      // /health connect into SYN retries (1 s, 3 s) behind Node's default of 511.
      const address = await server.listen({ host: cfg.service.host, port: cfg.service.port, backlog: LISTEN_BACKLOG });
      logger.info({ address, probes: probes.length, files: config.files.length }, 'vigil started');
      return address;
    },
    async stop() {
      await scheduler.stop(ms(cfg.service.shutdownTimeout));
      // Runs finished during the stop are judged before stepping down (or by the next leader).
      if (shared) await leadership.stop();
      else await leaderWork.lose();
      selfBackup?.stop();
      heartbeat?.stop();
      await server.close();
      await Promise.allSettled([...channels.values()].map((c) => c.close()));
      await store.close();
      logger.info('vigil stopped');
    },
  };
  return app;
}

/** Channel name → its testSchedule, for the channels that have one. */
const testSchedules = (channels: Record<string, { testSchedule?: string }>): Record<string, string> =>
  Object.fromEntries(Object.entries(channels).flatMap(([name, c]) => (c.testSchedule === undefined ? [] : [[name, c.testSchedule]])));

/** What /health says of held pages: how many, for which channels, and what brings them out. */
const heldError = (held: ReadonlyArray<{ channel: string; count: number }>) =>
  `${held.reduce((n, h) => n + h.count, 0)} notification(s) held: channel(s) ${held.map((h) => h.channel).join(', ')} not configured; add them back and reload`;
