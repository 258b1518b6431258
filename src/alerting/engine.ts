import { runArtifacts } from '../lib/artifacts.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { own } from '../lib/own.js';
import type { Redactor } from '../lib/redactor.js';
import { hasAlert } from '../lib/schema.js';
import { createSerialQueues } from '../lib/serial.js';
import type { IncidentView, NotifyAction } from '../notify/index.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { AlertStore, EscalationRow, Incident, NewNotification, RunRecord, Silence } from '../store/index.js';
import { advance, type EscalationPolicy, type Page, resolveTargets, startEscalation, type TargetContext } from './escalation.js';
import { activeSilence, type MaintenanceWindow, matches, windowOpen } from './matchers.js';
import { type AlertConfig, evaluate, flapShare, historyNeeded, isFlapping, type Judgement, type RunPoint } from './rules.js';

export interface AlertingOptions {
  store: AlertStore;
  clock: Clock;
  logger: Logger;
  /** The probes as configured now (changes on reload). */
  probes(): readonly ProbeDefinition[];
  /** A probe's secrets: its labels (a `${file:…}` label is a secret too) are copied onto an incident redacted. */
  redactorFor?(def: ProbeDefinition): Redactor;
  flapping: { start: number; stop: number };
  maintenance: readonly MaintenanceWindow[];
  sweepIntervalMs: number;
  /** Called after notifications were queued, so the outbox worker looks now rather than at its next poll. */
  onQueued(): void;
  /**
   * How often `channel` must hear again of an incident still unresolved, when its provider forgets
   * alerts that are not re-sent (Alertmanager); undefined for channels that keep what they were told.
   */
  resendEvery?(channel: string): number | undefined;
  /** A page recorded as muted rather than sent. */
  onMuted?(channel: string): void;
  /** Escalation policies by name, and how to resolve their targets (channels, people, on-call schedules). */
  escalation?: {
    policies(): Record<string, EscalationPolicy>;
    /** Read once per escalation step, at its moment (who is on call comes from the store). */
    targets(now: number): TargetContext | Promise<TargetContext>;
  };
  /** For metrics: an escalation step fired; an incident acknowledged or resolved after so long. */
  observer?: {
    escalated(policy: string): void;
    acknowledged(seconds: number): void;
    resolved(seconds: number): void;
  };
}

/**
 * Alert rules over run history, incidents and their pages. The only writer of incidents.
 *
 * Judging a run is synchronous and in memory; what it decides (open, resolve, flapping) is written
 * by a task serialized per (probe, rule), which reads the latest decision when it runs. So a slow
 * database delays incidents, never probes, and a burst of runs during an outage costs one write per
 * (probe, rule) once it answers; a write that fails is decided again by the next run.
 */
export interface Alerting {
  /**
   * Loads incidents, silences and the recent runs the rules need (call before the first observe):
   * `recent` for probes with rules, `newest` (the store's newest run, in memory) for whether each of
   * the others is failing.
   */
  seed(
    recent: (probeId: string, sinceMs: number, limit: number) => Promise<RunRecord[]>,
    newest: (probeId: string) => RunRecord | undefined,
  ): Promise<void>;
  /** Judges a finished run: may open, resolve or mark an incident flapping, queueing its pages. Never throws. */
  observe(run: RunRecord): void;
  acknowledge(id: number, actor: string): Promise<Incident>;
  resolve(id: number, actor: string): Promise<Incident>;
  /** Reminders, silences that ended, dependencies that recovered, probes removed. Runs periodically; never rejects. */
  sweep(): Promise<void>;
  /** Silences changed through the API: re-read them. Never rejects. */
  silencesChanged(): Promise<void>;
  /** Resolves when every incident change decided so far has been written (or has failed). */
  idle(): Promise<void>;
  start(): void;
  stop(): void;
}

const ACTOR = 'vigil';

/** The incident key: stable across retries and restarts; PagerDuty's dedup_key. */
export function incidentKey(i: Pick<Incident, 'probeId' | 'rule' | 'id'>): string {
  return `${i.probeId}/${i.rule}/${i.id}`;
}

/** Drops runs older than the rules look back over, keeping at least as many as they count. */
function trimHistory(points: RunPoint[], need: { runs: number; ms: number }, now: number): void {
  while (points.length > need.runs && (points[0]?.at ?? now) < now - need.ms) points.shift();
}

/** A failing run as its incident keeps it: code, message, and the files it kept (a screenshot). */
function failureOf(run: RunRecord): NonNullable<Incident['lastError']> {
  const artifacts = runArtifacts(run.details);
  return { code: run.code ?? 'FAILED', message: run.message ?? '', at: run.startedAt, ...(artifacts ? { artifacts } : {}) };
}

/** What channels are told of an incident. */
export function viewOf(i: Incident, runbook?: string): IncidentView {
  return {
    id: i.id,
    key: incidentKey(i),
    probeId: i.probeId,
    kind: i.kind,
    rule: i.rule,
    severity: i.severity,
    state: i.state,
    openedAt: i.openedAt,
    ...(i.ackedAt !== undefined ? { ackedAt: i.ackedAt } : {}),
    ...(i.ackedBy !== undefined ? { ackedBy: i.ackedBy } : {}),
    ...(i.resolvedAt !== undefined ? { resolvedAt: i.resolvedAt } : {}),
    summary: i.summary,
    ...(i.lastError !== undefined ? { lastError: i.lastError } : {}),
    labels: i.labels,
    flapping: i.flapping,
    ...(runbook !== undefined ? { runbook } : {}),
  };
}

export function createAlerting(opts: AlertingOptions): Alerting {
  const { store, clock } = opts;
  const log = opts.logger.child({ module: 'alerting' });
  /** The runs each alert rule judges, by probe (and `probe\u0000location` for a quorum rule): only probes with rules. */
  const history = new Map<string, RunPoint[]>();
  /**
   * Probes whose newest run failed, alert rules or not: all a dependency asks of another probe. A set of
   * the failing few rather than a newest-run point per probe (10.9 MB at 60,000 probes in a heap snapshot).
   */
  const failingNow = new Set<string>();
  const noteNewest = (probeId: string, ok: boolean) => {
    if (ok) failingNow.delete(probeId);
    else failingNow.add(probeId);
  };
  /** Unresolved incidents by `probe/rule`, as last written or read. */
  const unresolved = new Map<string, Incident>();
  const serial = createSerialQueues((key, err) => log.error({ err, key }, 'incident change failed; the next run decides again'));
  /** What the latest run decided per `probe/rule`, waiting for its serialized write. */
  const wanted = new Map<string, Wanted>();

  /**
   * From the store, not from memory: with several instances, another one (an earlier leader, an
   * acknowledgement through another instance's API) may have changed them since. A key with a write
   * of its own under way keeps what that write leaves.
   */
  async function syncUnresolved() {
    const list = await store.unresolvedIncidents();
    const seen = new Set<string>();
    for (const i of list) {
      const key = `${i.probeId}/${i.rule}`;
      seen.add(key);
      if (!serial.busy(key)) unresolved.set(key, i);
    }
    for (const key of [...unresolved.keys()]) if (!seen.has(key) && !serial.busy(key)) unresolved.delete(key);
  }
  /** Quorum rules: per probe and rule, the locations whose own runs currently fail it. */
  const failingAt = new Map<string, Map<string, string>>();
  let silences: Silence[] = [];
  let openWindows: MaintenanceWindow[] = [];
  /**
   * Per incident: when a resend can next be due, and the last outbox row of each (channel, recipient)
   * lane that needs resends. Memory only, rebuilt from the outbox after a start, a new leader or any
   * change of the incident, so a restart resends on time; between those, a due check reads one row per lane.
   */
  const resends = new Map<number, { next: number; lanes: Map<string, ResendLane> }>();
  let timer: TimerHandle | undefined;
  let sweeping: Promise<void> | undefined;

  // Every run looks its probe up: a map, rebuilt only when the probe list itself changes (reload).
  let byId = new Map<string, ProbeDefinition>();
  let indexed: readonly ProbeDefinition[] | undefined;
  const defOf = (id: string) => {
    const list = opts.probes();
    if (list !== indexed) {
      byId = new Map(list.map((p) => [p.id, p]));
      indexed = list;
    }
    return byId.get(id);
  };

  /** Why pages for this probe are held back now, if they are. */
  function muteReason(def: ProbeDefinition, now: number): string | undefined {
    const target = { id: def.id, labels: def.labels };
    const silence = activeSilence(silences, target, now);
    if (silence) {
      // A silence stored before ends were bounded may end past the Date range: still a silence.
      const until = Number.isFinite(new Date(silence.endsAt).getTime()) ? new Date(silence.endsAt).toISOString() : 'further notice';
      return `silenced until ${until} by ${silence.author}: ${silence.comment}`;
    }
    const window = openWindows.find((w) => matches(w, target));
    if (window) return `maintenance window ${window.name}`;
    const failing = (def.alert?.dependsOn ?? []).find((dep) => failingNow.has(dep));
    if (failing) return `depends on ${failing}, which is failing`;
    return undefined;
  }

  /** The incident as pages show it, with its alert's runbook as configured now. */
  const view = (i: Incident) => viewOf(i, defOf(i.probeId)?.alert?.runbook);

  function pages(i: Incident, action: NotifyAction, mutedReason?: string): NewNotification[] {
    const v = view(i);
    if (mutedReason !== undefined) for (const c of i.channels) opts.onMuted?.(c);
    return i.channels.map((channel) => ({
      channel,
      action,
      dedupKey: v.key,
      payload: v,
      ...(mutedReason !== undefined ? { mutedReason } : {}),
    }));
  }

  /** Acknowledgements, resolutions and reminders go to everyone the incident's pages reached. */
  async function announce(i: Incident, action: NotifyAction): Promise<NewNotification[]> {
    const v = view(i);
    return (await store.paged(i.id)).map(({ channel, recipient }) => ({
      channel,
      ...(recipient !== undefined ? { recipient } : {}),
      action,
      dedupKey: v.key,
      payload: v,
    }));
  }

  /** Writes a change; call only from a task serialized on the incident's key. */
  async function commit(change: Parameters<AlertStore['applyIncidentChange']>[0]): Promise<Incident> {
    const after = await store.applyIncidentChange(change);
    const key = `${after.probeId}/${after.rule}`;
    // A change may page a channel that needs resends (an escalation step): look again at the next sweep.
    resends.delete(after.id);
    if (after.state === 'resolved') unresolved.delete(key);
    else unresolved.set(key, after);
    opts.onQueued();
    return after;
  }

  async function open(def: ProbeDefinition & { alert: AlertConfig }, rule: string, reason: string, run: RunRecord, flapping: boolean) {
    const now = clock.now();
    const muted = muteReason(def, now);
    const draft = {
      probeId: def.id,
      rule,
      kind: def.kind,
      severity: def.alert.severity as Incident['severity'],
      state: 'open' as const,
      summary: `${def.id}: ${reason}`,
      labels: opts.redactorFor ? opts.redactorFor(def).value({ ...def.labels }) : { ...def.labels },
      channels: [...def.alert.channels],
      openedAt: now,
      ...(run.ok ? {} : { lastError: failureOf(run) }),
      flapping,
      notified: muted === undefined,
    };
    // The pages carry the incident's id, known only once inserted: the store builds them inside the
    // same transaction from the inserted row.
    const policyName = def.alert.policy;
    const policy = policyName === undefined ? undefined : own(opts.escalation?.policies() ?? {}, policyName);
    const opened = await commit({
      open: draft,
      event: { at: now, type: 'opened', actor: ACTOR, detail: muted ? `${reason}; pages muted: ${muted}` : reason },
      notify: (i) => pages(i, 'trigger', muted),
      // The incident keeps a copy of its policy: a config change later does not rewrite a page in progress.
      ...(policy ? { escalation: { policy: { name: policyName, ...policy }, state: startEscalation(policy, now) } } : {}),
    });
    log.warn({ incident: opened.id, probe: def.id, rule, muted }, 'incident opened');
    if (policy) {
      const [row] = (await store.dueEscalations(now)).filter((r) => r.incidentId === opened.id);
      if (row) await escalate(row, now);
    }
  }

  async function close(i: Incident, actor: string, detail: string) {
    const now = clock.now();
    const resolved = { ...i, state: 'resolved' as const, resolvedAt: now, resolvedBy: actor };
    // Only those who were told of the incident hear that it ended.
    const after = await commit({
      id: i.id,
      patch: { state: 'resolved', resolvedAt: now, resolvedBy: actor },
      event: { at: now, type: 'resolved', actor, detail },
      notify: await announce(resolved, 'resolve'),
    });
    opts.observer?.resolved((now - i.openedAt) / 1000);
    log.info({ incident: i.id, probe: i.probeId, rule: i.rule, actor }, 'incident resolved');
    return after;
  }

  /** Fires the escalation steps due at `now`, one step per incident per call, each on its incident's key. */
  async function escalateDue(now: number) {
    if (!opts.escalation) return;
    const rows = await store.dueEscalations(now);
    await Promise.all(
      rows.map(async (row) => {
        const first = await store.incident(row.incidentId);
        if (!first) return;
        await serial.run(`${first.probeId}/${first.rule}`, async () => {
          // Read again inside the key's turn: a run's write may have moved it on meanwhile.
          const current = await store.escalation(row.incidentId);
          if (current && current.state.step === row.state.step && current.state.pass === row.state.pass) await escalate(current, now);
        });
      }),
    );
  }

  /** One escalation step of one incident; call only from a task serialized on the incident's key. */
  async function escalate(row: EscalationRow, now: number) {
    if (!opts.escalation) return;
    const i = await store.incident(row.incidentId);
    const def = i && defOf(i.probeId);
    if (!i || !def || i.state !== 'open') return;
    // A muted incident's escalation waits: it fires when the silence or the dependency clears.
    if (muteReason(def, now) !== undefined) return;
    const policy = row.policy as EscalationPolicy & { name?: string };
    const step = policy.steps[row.state.step];
    if (!step) return;
    const { pages: targets, nobody } = resolveTargets(step.notify, step.via, await opts.escalation.targets(now), now);
    const next = advance(policy, row.state, i.openedAt, targets.length > 0);
    const fallback: Page[] = next.fallback ? policy.fallback.map((channel) => ({ channel })) : [];
    const v = view(i);
    const notify = [...targets, ...fallback].map((p) => ({
      channel: p.channel,
      ...(p.recipient !== undefined ? { recipient: p.recipient } : {}),
      action: 'trigger' as const,
      dedupKey: v.key,
      payload: v,
    }));
    const paged = targets.map((p) => (p.recipient ? `${p.recipient} via ${p.channel}` : p.channel));
    const detail = [
      `step ${row.state.step + 1} of ${policy.steps.length}${row.state.pass > 0 ? ` (pass ${row.state.pass + 1})` : ''}`,
      paged.length > 0 ? `paged ${paged.join(', ')}` : 'reached nobody',
      ...(nobody.length > 0 ? [`nobody for ${nobody.join(', ')}`] : []),
      ...(fallback.length > 0 ? [`the whole pass reached nobody: paged fallback ${policy.fallback.join(', ')}`] : []),
    ].join('; ');
    await commit({
      id: i.id,
      ...(notify.length > 0 && !i.notified ? { patch: { notified: true } } : {}),
      event: { at: now, type: 'escalated', actor: ACTOR, detail },
      notify,
      escalation: { state: next.state },
    });
    opts.observer?.escalated(policy.name ?? 'policy');
    log.info({ incident: i.id, step: row.state.step + 1, pass: row.state.pass + 1, paged, nobody }, 'escalation step');
  }

  /**
   * Records what a run decided for one rule and, when that differs from what is written, queues the
   * write. The write reads the newest decision when its turn comes (see `settle`).
   */
  function decide(def: ProbeDefinition & { alert: AlertConfig }, w: Omit<Wanted, 'def'>) {
    const key = `${def.id}/${w.rule}`;
    const current = unresolved.get(key);
    const flapping = current && !w.quorum ? isFlapping(current.flapping, w.share, opts.flapping) : current?.flapping;
    const act = (w.judgement === 'fire' && !current) || (w.judgement === 'clear' && current) || (current && flapping !== current.flapping);
    // Most runs change nothing: no write and no promise, unless a write for this key is under way.
    if (!act && !wanted.has(key)) return;
    wanted.set(key, { def, ...w });
    serial.coalesce(key, () => settle(key));
  }

  /** Writes what the newest run decided for `key`, against the incident as it is now. */
  async function settle(key: string) {
    const w = wanted.get(key);
    if (!w) return;
    wanted.delete(key);
    const current = unresolved.get(key);
    if (w.judgement === 'fire' && !current)
      await open(w.def, w.rule, w.reason, w.run, w.quorum ? false : isFlapping(false, w.share, opts.flapping));
    else if (w.judgement === 'clear' && current) await close(current, ACTOR, w.reason);
    else if (current && !w.quorum) {
      const flapping = isFlapping(current.flapping, w.share, opts.flapping);
      if (flapping !== current.flapping) {
        await commit({
          id: current.id,
          patch: { flapping },
          event: {
            at: clock.now(),
            type: flapping ? 'flapping' : 'settled',
            actor: ACTOR,
            detail: `state changes ${Math.round(w.share * 100)}% of the last 21 runs`,
          },
          notify: [],
        });
      }
    }
  }

  function observe(run: RunRecord) {
    const def = defOf(run.probeId);
    if (def?.alert?.quorum !== undefined) {
      observeQuorum(def as ProbeDefinition & { alert: AlertConfig & { quorum: number } }, run);
      return;
    }
    noteNewest(run.probeId, run.ok);
    if (!def || !hasAlert(def)) return;
    const point = pointOf(run);
    const points = history.get(run.probeId) ?? [];
    points.push(point);
    history.set(run.probeId, points);
    const alert = def.alert;
    const need = historyNeeded(alert);
    const now = clock.now();
    trimHistory(points, need, now);
    // A run cut short by shutdown says nothing about the target.
    if (run.code === 'ABORTED') return;

    const share = flapShare(points);
    for (const v of evaluate(alert, points, now)) decide(def, { rule: v.rule, judgement: v.judgement, reason: v.reason, run, share });
  }

  /**
   * A quorum rule judges each location's runs on their own (the same rules, per location), and
   * opens the incident only while at least `quorum` locations fail: one region's network trouble is
   * not an outage. It resolves when fewer than `quorum` locations still fail.
   */
  function observeQuorum(def: ProbeDefinition & { alert: AlertConfig & { quorum: number } }, run: RunRecord) {
    const where = run.location ?? '';
    const key = `${run.probeId}\u0000${where}`;
    const points = history.get(key) ?? [];
    const point = pointOf(run);
    points.push(point);
    history.set(key, points);
    // The probe's own state (for dependencies) follows every location.
    noteNewest(run.probeId, run.ok);
    const need = historyNeeded(def.alert);
    const now = clock.now();
    trimHistory(points, need, now);
    if (run.code === 'ABORTED') return;
    for (const v of evaluate(def.alert, points, now)) {
      const ruleKey = `${def.id}/${v.rule}`;
      const failing = failingAt.get(ruleKey) ?? new Map<string, string>();
      failingAt.set(ruleKey, failing);
      if (v.judgement === 'fire') failing.set(where, v.reason);
      else if (v.judgement === 'clear') failing.delete(where);
      const enough = failing.size >= def.alert.quorum;
      const reason = enough
        ? `failing in ${failing.size} locations (quorum ${def.alert.quorum}): ${[...failing].map(([at, why]) => `${at || '(no location)'}: ${why}`).join('; ')}`
        : `only ${failing.size} location(s) still failing, quorum ${def.alert.quorum}`;
      decide(def, { rule: v.rule, judgement: enough ? 'fire' : 'clear', reason, run, share: 0, quorum: true });
    }
  }

  /**
   * A new leader rebuilds each location's history and which locations fail, from the store, so an
   * incident open under the last leader is neither resolved nor opened again just for the handover.
   */
  function seedQuorum(def: ProbeDefinition & { alert: AlertConfig }, runs: RunRecord[], point: (r: RunRecord) => RunPoint, now: number) {
    const byLocation = new Map<string, RunPoint[]>();
    for (const r of runs) {
      const where = r.location ?? '';
      byLocation.set(where, [...(byLocation.get(where) ?? []), point(r)]);
    }
    for (const [where, points] of byLocation) {
      history.set(`${def.id}\u0000${where}`, points);
      for (const v of evaluate(def.alert, points, now)) {
        const ruleKey = `${def.id}/${v.rule}`;
        const failing = failingAt.get(ruleKey) ?? new Map<string, string>();
        failingAt.set(ruleKey, failing);
        // Between fire and clear ("hold"), the last run says which side it is on.
        if (v.judgement === 'fire' || (v.judgement === 'hold' && points.at(-1)?.ok === false)) failing.set(where, v.reason);
      }
    }
  }

  async function sweep() {
    const now = clock.now();
    await syncUnresolved();
    await escalateDue(now);
    silences = await store.silences(now);
    openWindows = [];
    for (const w of opts.maintenance) if (windowOpen(w, now)) openWindows.push(w);
    await Promise.all([...unresolved].map(([key, i]) => serial.run(key, () => sweepOne(key, i.id, now))));
    const live = new Set([...unresolved.values()].map((i) => i.id));
    for (const id of resends.keys()) if (!live.has(id)) resends.delete(id);
  }

  /** Reminders, late pages and removed probes for one incident, in its key's turn. */
  async function sweepOne(key: string, id: number, now: number) {
    const i = unresolved.get(key);
    // Resolved (or replaced) by a write that came first.
    if (!i || i.id !== id) return;
    const def = defOf(i.probeId);
    if (!def?.alert) {
      await close(i, ACTOR, 'probe or its alert rules removed from config');
      return;
    }
    const muted = muteReason(def, now);
    if (!i.notified) {
      if (muted === undefined) {
        await commit({
          id: i.id,
          patch: { notified: true },
          event: { at: now, type: 'notified', actor: ACTOR, detail: 'no longer muted: paging now' },
          notify: pages(i, i.state === 'acknowledged' ? 'acknowledge' : 'trigger'),
        });
      }
      return;
    }
    const repeat = def.alert.repeat;
    if (
      repeat !== undefined &&
      i.state === 'open' &&
      !i.flapping &&
      muted === undefined &&
      now - (i.lastReminderAt ?? i.openedAt) >= ms(repeat)
    ) {
      await commit({
        id: i.id,
        patch: { lastReminderAt: now },
        event: { at: now, type: 'reminded', actor: ACTOR },
        notify: await announce(i, 'remind'),
      });
    }
    await resend(i, now);
  }

  /**
   * Queues a `remind` for each channel that forgets unrepeated alerts (see `resendEvery`) and has not
   * been sent anything for this incident for its interval: to that channel alone, so nobody is paged
   * again elsewhere. Acknowledged, flapping and muted incidents too: the alert is still true, and
   * letting it lapse would tell the provider's receivers it ended. Through the outbox, so a resend
   * survives a restart and waits out the provider's outage; one pending at a time per channel.
   */
  async function resend(i: Incident, now: number) {
    if (!opts.resendEvery || !i.notified || (resends.get(i.id)?.next ?? 0) > now) return;
    const lanes = resends.get(i.id)?.lanes ?? (await resendLanes(i.id));
    let next = Number.POSITIVE_INFINITY;
    const v = view(i);
    const due: ResendLane[] = [];
    for (const lane of lanes.values()) {
      const every = opts.resendEvery(lane.channel);
      const last = await store.outboxItem(lane.lastId);
      if (every === undefined || !last) continue;
      // From its delivery: that is when the provider last heard of it, however long an outage held it.
      const at = last.deliveredAt ?? last.createdAt;
      // Still waiting for the provider: look again next sweep rather than pile resends up behind it.
      if (last.state === 'pending') next = now;
      else if (now - at >= every) {
        due.push(lane);
        next = Math.min(next, now + every);
      } else next = Math.min(next, at + every);
    }
    resends.set(i.id, { next, lanes });
    if (due.length === 0) return;
    const queued = await store.enqueue(
      due.map(({ channel, recipient }) => ({
        incidentId: i.id,
        channel,
        ...(recipient !== undefined ? { recipient } : {}),
        action: 'remind' as const,
        dedupKey: v.key,
        payload: v,
      })),
      now,
    );
    due.forEach((lane, k) => {
      lane.lastId = queued[k]?.id ?? lane.lastId;
    });
    opts.onQueued();
    log.debug({ incident: i.id, channels: due.map((l) => l.channel) }, 'alert re-sent to keep it open');
  }

  /** The lanes of an incident's pages whose channel needs resends, each with its newest outbox row; none once its resolve is queued. */
  async function resendLanes(id: number): Promise<Map<string, ResendLane>> {
    const lanes = new Map<string, ResendLane>();
    const sent = await store.notifications(id);
    // Queued with the resolve itself: a resend now would bring the alert back.
    if (sent.some((n) => n.action === 'resolve')) return lanes;
    for (const n of sent) {
      if (n.state === 'muted' || n.action === 'test' || opts.resendEvery?.(n.channel) === undefined) continue;
      const key = `${n.channel}\u0000${n.recipient ?? ''}`;
      // The outbox delivers a lane in order: its newest row says whether the provider is still waited on.
      if ((lanes.get(key)?.lastId ?? 0) < n.id) {
        lanes.set(key, { channel: n.channel, ...(n.recipient !== undefined ? { recipient: n.recipient } : {}), lastId: n.id });
      }
    }
    return lanes;
  }

  async function transition(id: number, to: 'acknowledged' | 'resolved', actor: string): Promise<Incident> {
    const first = await store.incident(id);
    if (!first) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no incident ${id}`);
    return serial.run(`${first.probeId}/${first.rule}`, async () => {
      // Read again in the key's turn: a rule may have resolved it meanwhile.
      const i = (await store.incident(id)) ?? first;
      if (i.state === 'resolved') throw new VigilError('VIGIL_ERR_CONFLICT', `incident ${id} is already resolved`);
      if (to === 'resolved') return close(i, actor, `resolved by ${actor}`);
      if (i.state === 'acknowledged') throw new VigilError('VIGIL_ERR_CONFLICT', `incident ${id} is already acknowledged by ${i.ackedBy}`);
      const now = clock.now();
      const acked = { ...i, state: 'acknowledged' as const, ackedAt: now, ackedBy: actor };
      opts.observer?.acknowledged((now - i.openedAt) / 1000);
      return commit({
        id,
        patch: { state: 'acknowledged', ackedAt: now, ackedBy: actor },
        event: { at: now, type: 'acknowledged', actor },
        notify: await announce(acked, 'acknowledge'),
      });
    });
  }

  async function guardedSweep() {
    // One sweep at a time: a slow database must not stack them up.
    if (sweeping) return sweeping;
    sweeping = sweep()
      .catch((err: unknown) => log.error({ err }, 'alert sweep failed'))
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  }

  return {
    async seed(recent, newest) {
      const now = clock.now();
      // A new leader starts from what is recorded, not from what it last saw.
      await syncUnresolved();
      silences = await store.silences(now);
      failingAt.clear();
      for (const def of opts.probes()) {
        if (!hasAlert(def)) continue;
        const need = historyNeeded(def.alert);
        // The rules' time window, or else their last N runs (N per location, for a quorum rule).
        const perLocation = def.alert.quorum !== undefined ? 16 : 1;
        const runs =
          need.ms > 0
            ? await recent(def.id, now - need.ms, Math.max(need.runs * perLocation, 1000))
            : await recent(def.id, 0, need.runs * perLocation);
        runs.sort((a, b) => a.startedAt - b.startedAt);
        const point = (r: RunRecord): RunPoint => ({
          at: r.startedAt,
          ok: r.ok,
          durationMs: r.durationMs,
          values: r.values,
          code: r.code,
          message: r.message,
        });
        history.set(def.id, runs.map(point));
        // No run in the rules' window: not failing, as far as a dependent is concerned.
        noteNewest(def.id, runs.at(-1)?.ok ?? true);
        if (def.alert.quorum !== undefined) seedQuorum(def, runs, point, now);
      }
      // The others' last state, for dependencies: from memory, not a query each (60,000 of them held
      // a restart's /health back 2.5 s).
      for (const def of opts.probes()) {
        if (hasAlert(def)) continue;
        const last = newest(def.id);
        if (last) noteNewest(def.id, last.ok);
      }
      await guardedSweep();
    },
    observe(run) {
      try {
        observe(run);
      } catch (err) {
        log.error({ err, probe: run.probeId }, 'alert evaluation failed');
      }
    },
    acknowledge: (id, actor) => transition(id, 'acknowledged', actor),
    resolve: (id, actor) => transition(id, 'resolved', actor),
    sweep: guardedSweep,
    async silencesChanged() {
      try {
        silences = await store.silences(clock.now());
      } catch (err) {
        log.error({ err }, 'reading silences failed; the next sweep reads them again');
      }
    },
    async idle() {
      while (serial.size > 0 || sweeping) {
        await sweeping;
        await serial.idle();
      }
    },
    start() {
      const loop = () => {
        void guardedSweep().finally(() => {
          if (timer !== undefined) timer = clock.setTimeout(loop, opts.sweepIntervalMs);
        });
      };
      timer = clock.setTimeout(loop, opts.sweepIntervalMs);
    },
    stop() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** One (channel, recipient) lane of an incident's pages that gets resends, and the newest outbox row sent on it. */
interface ResendLane {
  channel: string;
  recipient?: string;
  lastId: number;
}

/** A rule's newest decision for one probe, waiting for its write. */
interface Wanted {
  def: ProbeDefinition & { alert: AlertConfig };
  rule: string;
  judgement: Judgement;
  reason: string;
  run: RunRecord;
  /** Share of state changes in recent runs (flapping); 0 for quorum rules, which do not flap. */
  share: number;
  /** Decided over locations by quorum: opened unflapping, and no flapping updates. */
  quorum?: boolean;
}

/** What the alert rules keep of a run. */
function pointOf(run: RunRecord): RunPoint {
  return { at: run.startedAt, ok: run.ok, durationMs: run.durationMs, values: run.values, code: run.code, message: run.message };
}
