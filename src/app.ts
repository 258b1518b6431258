import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { createAlerting, createAlertSnapshot, windowTimes } from './alerting/index.js';
import { createLeadership, createRunFeed } from './cluster/index.js';
import { createReloader, createSecretBook, type LoadedConfig, linksPointAtLoopback, type ReloadResult, redact } from './config/index.js';
import { pruneArtifacts } from './lib/artifacts.js';
import { type Clock, systemClock } from './lib/clock.js';
import { ms } from './lib/duration.js';
import { type Logger, setLogSecrets } from './lib/logger.js';
import { own } from './lib/own.js';
import { createPushInbox } from './lib/push-inbox.js';
import { signAction } from './lib/signing.js';
import { createMetrics, FastRegistry, type Metrics } from './metrics/index.js';
import {
  type Channel,
  createChannels,
  createHeartbeat,
  createOutboxWorker,
  recipientOf,
  resendInterval,
  swapChannels,
} from './notify/index.js';
import { createOnCall } from './oncall/index.js';
import { type ProbeDefinition, proberFor, probers } from './probers/index.js';
import { buildBadge, buildProbePage, buildPublicStatus, buildReport, buildStatusPage, publicProbeIds, setupOf } from './report/index.js';
import { type CronDriver, createChannelTests, createScheduler, nodeCronDriver, type Scheduler } from './scheduler/index.js';
import { type ApiToken, closeServer, createHealth, createServer, type HttpServer } from './server/index.js';
import { createHousekeeping, createPostgresStore, createSelfBackup, createSqliteStore, type RunRecord, type Store } from './store/index.js';

export type { ReloadResult } from './config/index.js';

export interface AppDeps {
  config: LoadedConfig;
  logger: Logger;
  clock?: Clock;
  /** Reads the config again (SIGHUP, `POST /api/v1/admin/reload`); without it reload is refused. */
  reloadConfig?: () => LoadedConfig;
  /** Tests drive cron schedules with a fake clock through their own driver. */
  cron?: CronDriver;
  registry?: Registry;
  /** This instance's name among those sharing a database (main.ts: host and pid); else host and a random suffix. */
  instance?: string;
}

/** A wired vigil: start it, stop it, reach its parts. */
export interface App {
  readonly server: HttpServer;
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

const HOUSEKEEPING_EVERY_MS = 3_600_000;
/** How often /health's and /metrics' alerting figures are read from the store (in the background). */
const FIGURES_EVERY_MS = 5_000;
/** Pending connections the kernel holds for vigil to accept (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

/**
 * The composition root: every part is made here from its dependencies, in dependency order, and
 * nowhere else. A reload reassigns `config`/`cfg`/`probes` below; parts read them when they run.
 */
export function createApp(deps: AppDeps): App {
  const { logger } = deps;
  let config = deps.config;
  let cfg = config.service;
  let probes: readonly ProbeDefinition[] = config.probes;
  const clock = deps.clock ?? systemClock;
  const registry = deps.registry ?? new FastRegistry();
  const instance = deps.instance ?? `${hostname()}-${randomBytes(4).toString('hex')}`;
  // Every form of every secret ever loaded: per probe for its results, all of them on every way out.
  const secretBook = createSecretBook(config, (all) => setLogSecrets(logger, all));
  const redactDef = <T>(v: T) => redact(v, secretBook.interpolated());

  // PostgreSQL when configured (several instances share it: one leader by lease), else the SQLite file.
  const pg = cfg.storage.postgres;
  const shared = pg !== undefined;
  const batching = {
    clock,
    logger,
    batchRows: cfg.storage.batch.maxRows,
    batchIntervalMs: ms(cfg.storage.batch.interval),
    rollups: { sketchValues: Object.values(probers).flatMap((p) => p.percentiles ?? []) },
  };
  const sqlitePath = cfg.storage.sqlite.path;
  const store = pg
    ? createPostgresStore({ ...batching, url: pg.url, timeoutMs: ms(pg.timeout), poolSize: pg.poolSize })
    : createSqliteStore({ ...batching, path: sqlitePath === ':memory:' ? sqlitePath : path.resolve(config.baseDir, sqlitePath) });

  // Files runs keep (a failed browser run's screenshot and trace): beside the SQLite file, else in ./data.
  const dataDir =
    pg || sqlitePath === ':memory:' ? path.resolve(config.baseDir, 'data') : path.dirname(path.resolve(config.baseDir, sqlitePath));

  const onCall = createOnCall({ clock, alerts: store.alerts, schedules: () => cfg.schedules });
  const figures = createAlertSnapshot({ store: store.alerts, clock, logger, intervalMs: FIGURES_EVERY_MS, onCall: () => onCall.now() });
  const metrics = createMetrics({
    registry,
    durationBuckets: [...cfg.metrics.durationBuckets],
    ...(cfg.service.location ? { location: cfg.service.location } : {}),
    storeStats: () => ({ ...store.stats(), queued: store.health().queued }),
    openIncidents: () => figures.current().openBySeverity,
    outboxStats: () => figures.current().outbox,
    heldPages: () => figures.current().held,
    onCall: () => figures.current().onCall,
  });

  const people = () => cfg.people;
  // The probes on the status page, matched once per config and probe list (a reload replaces both
  // objects): every badge request asks, and 10,000 probes × a few globs is too much to redo each time.
  let publicMemo: { config: unknown; probes: unknown; ids: Set<string> } | undefined;
  const publicIds = (): Set<string> => {
    if (cfg.statusPage === undefined) return new Set();
    if (publicMemo?.config !== cfg.statusPage || publicMemo.probes !== probes)
      publicMemo = { config: cfg.statusPage, probes, ids: publicProbeIds(cfg.statusPage, probes) };
    return publicMemo.ids;
  };
  const maintenanceOf = (c: typeof cfg) => c.alerting.maintenance.map((w) => ({ ...w, durationMs: ms(w.duration) }));
  let maintenance = maintenanceOf(cfg);
  // Where each maintenance window stands, for `/`: ~15 ms of cron walking per window, so worked out
  // once a minute and per window list (the page shows minutes), not on every page load.
  let windowsMemo: { windows: unknown; minute: number; rows: ReturnType<typeof windowRows> } | undefined;
  const windowRows = (now: number) =>
    maintenance.map((w) => {
      const t = windowTimes(w, now);
      const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
      return { name: w.name, active: t.active, startsAt: at(t.startsAt), endsAt: at(t.endsAt), probes: [...w.probes] };
    });
  const windowsNow = (now: number) => {
    const minute = Math.floor(now / 60_000);
    if (windowsMemo?.windows !== maintenance || windowsMemo.minute !== minute)
      windowsMemo = { windows: maintenance, minute, rows: windowRows(now) };
    return windowsMemo.rows;
  };
  /** Read on every request: a reload replaces the contents, and the routes see the new tokens at once. */
  const tokens: ApiToken[] = cfg.auth.tokens.map((t) => ({ ...t }));
  /** Reassigned by reload() with `channels`, which it changes in place (the worker reads it at every scan). */
  let channelConfig = cfg.channels;
  const channelTypes = () => Object.fromEntries(Object.entries(channelConfig).map(([n, c]) => [n, c.type]));
  const channels = createChannels(channelConfig, { logger, clock });
  metrics.setChannels([...channels.keys()]);
  const cronDriver = deps.cron ?? nodeCronDriver(logger);
  const baseUrl = cfg.alerting.baseUrl.replace(/\/$/, '');
  const linkSecret = cfg.interactions.linkSecret;
  const delivery = cfg.alerting.delivery;

  const worker = createOutboxWorker({
    ...(shared ? { claim: { by: instance, forMs: ms(delivery.timeout) + 2_000 } } : {}),
    redactor: () => secretBook.all(),
    store: store.alerts,
    channels,
    clock,
    logger,
    observer: {
      outcome: (c, o) => {
        metrics.notification(c, o);
        void figures.refresh();
      },
      latency: (c, s) => metrics.deliveryLatency(c, s),
      held: () => void figures.refresh(),
    },
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
      return p && recipientOf(id, p);
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
    onQueued: () => {
      worker.wake();
      void figures.refresh();
    },
    resendEvery: (channel) => {
      const c = own(channelConfig, channel);
      return c === undefined ? undefined : resendInterval(c);
    },
    onMuted: (channel) => metrics.notification(channel, 'muted'),
    escalation: {
      policies: () => cfg.escalation,
      targets: async (now) => ({ channels: channelTypes(), people: people(), onCall: await onCall.resolver(now) }),
    },
    observer: {
      escalated: (p) => metrics.escalated(p),
      acknowledged: (s) => metrics.acknowledged(s),
      resolved: (s) => metrics.resolved(s),
    },
  });

  // Push probes' pings: the HTTP route records them, the probes' runs take them.
  const pushInbox = createPushInbox();
  const runLog = logger.child({ module: 'run' });
  // The whole flow of one result, in order: measure (done) → metrics → store → alert rules → log.
  const onResult = (result: RunRecord) => {
    // Where it ran: several instances write to one database, and the report and quorum rules read it.
    const run = cfg.service.location && result.location === undefined ? { ...result, location: cfg.service.location } : result;
    metrics.observeRun(run);
    store.append(run);
    // Shared: the leader reads every instance's runs from the database (the run feed) and judges them there.
    if (!shared) alerting.observe(run);
    // A passing run is a debug line: at 2,000 probes a second, info lines for each were a fifth of
    // vigil's CPU and 120,000 lines a minute that say what the store and /metrics already hold. Its
    // fields are not even built unless debug is on.
    if (run.ok && !runLog.isLevelEnabled('debug')) return;
    const fields = {
      probe: run.probeId,
      kind: run.kind,
      ok: run.ok,
      ms: Math.round(run.durationMs),
      attempts: run.attempts,
      trigger: run.trigger,
    };
    if (run.ok) runLog.debug(fields, 'probe run');
    else runLog.warn({ ...fields, code: run.code, reason: run.message }, 'probe run');
  };
  const scheduler = createScheduler({
    clock,
    logger,
    cron: cronDriver,
    probesDir: path.resolve(config.baseDir, cfg.probes.dir),
    dataDir,
    maxSpreadMs: cfg.scheduler.spread ? 60_000 : 0,
    maxConcurrent: cfg.scheduler.maxConcurrent,
    metrics,
    stateFor: (id) => ({ get: <T>() => store.probeState(id) as T | undefined, set: (v) => store.setProbeState(id, v) }),
    redactorFor: (def) => secretBook.forProbe(def),
    push: pushInbox,
    onResult,
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

  const health = createHealth({
    clock,
    store,
    scheduler,
    alerts: () => figures.current(),
    ...(shared ? { cluster: { instance, isLeader: () => leadership.isLeader(), holder: () => leadership.holder() } } : {}),
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
          firstAfterMs: ms(cfg.backup.firstAfter),
          keep: cfg.backup.keep,
          clock,
          logger,
          onResult: (r) => metrics.selfBackup(r.ok, r.at / 1000, r.bytes),
        })
      : undefined;
  const housekeeping = createHousekeeping({
    store,
    clock,
    logger,
    everyMs: HOUSEKEEPING_EVERY_MS,
    retention: () => ({
      runsMs: ms(cfg.storage.retention.runs),
      failedRunsMs: ms(cfg.storage.retention.failedRuns),
      auditMs: ms(cfg.storage.retention.audit),
      reportDays: cfg.report.days,
    }),
    pruneArtifacts: (before) => pruneArtifacts(dataDir, before),
  });
  const feed = createRunFeed({ store, clock, logger, intervalMs: () => ms(cfg.cluster.feedInterval), observe: (r) => alerting.observe(r) });

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
  const leaderWork = {
    async gain() {
      metrics.leader(true);
      // Shared: the history is seeded from runs up to the cursor, and the feed judges those after it.
      const cursor = shared ? await store.feedEnd() : undefined;
      await alerting.seed(
        (probeId, since, limit) => store.runs({ probeId, since, limit, ...(cursor ? { through: cursor } : {}) }),
        // Past the cursor, perhaps (another instance's newest run): the feed then delivers it again, to the same state.
        (probeId) => store.latest(probeId),
      );
      if (shared) await feed.start(cursor);
      housekeeping.start();
      alerting.start();
      worker.start();
      channelTests.start();
    },
    async lose() {
      metrics.leader(false);
      feed.stop();
      housekeeping.stop();
      alerting.stop();
      channelTests.stop();
      await worker.stop(ms(cfg.alerting.delivery.timeout));
      await alerting.idle();
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

  const reload = createReloader({
    logger,
    ...(deps.reloadConfig ? { read: deps.reloadConfig } : {}),
    running: () => ({ service: cfg, probes }),
    knownSecrets: () => secretBook.interpolated(),
    reloaded: (ok) => metrics.reloaded(ok, clock.now() / 1000),
    prepare(next) {
      const nextChannels = next.service.channels;
      const swap = swapChannels(channels, channelConfig, nextChannels, (c) => createChannels(c, { logger, clock }));
      return {
        apply() {
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
          void figures.refresh();
          // A channel a reload removed or replaced: its sends in flight finish on it, then its clients close.
          for (const old of swap.retired)
            worker
              .settled(old)
              .then(() => old.close())
              .catch((err) => logger.warn({ err }, 'closing a channel a reload replaced failed'));
          return { added: swap.added, removed: swap.removed, changed: swap.changed };
        },
      };
    },
  });

  const reportSetup = () => setupOf({ channels: channelConfig, schedules: cfg.schedules, escalation: cfg.escalation });
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
    admin: { audit: store.audit, reload: (actor) => app.reload(actor), clock },
    push: { inbox: pushInbox },
    artifacts: { dataDir },
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
      channels: channelTypes,
      testChannel: (name) => channelTests.send(name),
      targets: () => probes.map((p) => ({ id: p.id, labels: p.labels })),
      maintenance: () => maintenance,
    },
    report: {
      // Redacted whole: a probe's target (a URL with a key in it) and run messages are config-derived.
      report: (q) =>
        buildReport({ service: cfg.service.name, clock, store, probes: () => probes, config: cfg.report, setup: reportSetup }, q).then(
          redactDef,
        ),
      statusPage: () =>
        buildStatusPage({
          service: cfg.service.name,
          clock,
          store,
          probes: () => probes,
          isRunning: (id) => scheduler.isRunning(id),
          held: () => store.alerts.held(),
          // Kept by the snapshot; an app not started yet (no figures read) reads them first.
          undelivered: async () => {
            if (figures.current().readAt === undefined) await figures.refresh();
            return figures.current().undelivered;
          },
          oncall: onCall,
          people,
          reportUrl: '/api/v1/report?format=html',
          maintenance: windowsNow,
        }).then(redactDef),
    },
    pages: {
      probePage: (id) => {
        const def = probes.find((p) => p.id === id);
        if (def === undefined) return Promise.resolve(undefined);
        return buildProbePage(
          { service: cfg.service.name, clock, store, isRunning: (p) => scheduler.isRunning(p), redact: redactDef },
          def,
        );
      },
      publicStatus: async () => (cfg.statusPage ? buildPublicStatus({ clock, store, probes: () => probes }, cfg.statusPage) : undefined),
      badge: async (id, kind, days) => (probes.some((p) => p.id === id) ? buildBadge({ clock, store }, id, kind, days) : undefined),
      statusPublic: () => cfg.statusPage?.public === true,
      publicProbe: (id) => publicIds().has(id),
    },
  });

  const app: App = {
    server,
    store,
    scheduler,
    metrics,
    registry,
    reload,
    async start() {
      await store.ready();
      declare(probes);
      await figures.start();
      if (shared) leadership.start();
      else await leaderWork.gain();
      heartbeat?.start();
      selfBackup?.start();
      // A deep accept queue: 2,000 clients connecting at once must not push a load balancer's
      // /health connect into SYN retries (1 s, 3 s) behind Node's default of 511.
      const address = await server.listen({ host: cfg.service.host, port: cfg.service.port, backlog: LISTEN_BACKLOG });
      logger.info({ address, probes: probes.length, files: config.files.length }, 'vigil started');
      if (linksPointAtLoopback(cfg.alerting.baseUrl, cfg.service.host)) {
        logger.warn(
          { baseUrl: cfg.alerting.baseUrl, host: cfg.service.host },
          'alerting.baseUrl points at localhost while vigil listens on other addresses: links in pages will not reach it; set alerting.baseUrl',
        );
      }
      return address;
    },
    async stop() {
      await scheduler.stop(ms(cfg.service.shutdownTimeout));
      // Runs finished during the stop are judged before stepping down (or by the next leader).
      if (shared) await leadership.stop();
      else await leaderWork.lose();
      figures.stop();
      selfBackup?.stop();
      heartbeat?.stop();
      await closeServer(server, ms(cfg.service.shutdownTimeout), logger);
      await Promise.allSettled([...channels.values()].map((c: Channel) => c.close()));
      await store.close();
      logger.info('vigil stopped');
    },
  };
  return app;
}

/** Channel name → its testSchedule, for the channels that have one. */
const testSchedules = (channels: Record<string, { testSchedule?: string }>): Record<string, string> =>
  Object.fromEntries(Object.entries(channels).flatMap(([name, c]) => (c.testSchedule === undefined ? [] : [[name, c.testSchedule]])));
