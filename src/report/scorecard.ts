import { keepsOnCall } from '../notify/index.js';
import { type ProbeDefinition, reportOf } from '../probers/index.js';
import { formatDuration } from './format.js';
import { type Attestation, CHECKLIST, type ChecklistItemId, STANDING_CHECKS, type StandingCheck } from './schema.js';
import type { Evidence, ItemStatus, Report, Scorecard, ScorecardItem } from './types.js';

/** The alerting and on-call setup the scorecard judges from config. */
export interface ScorecardSetup {
  /** Channel name → type. */
  channels: Record<string, string>;
  /** Schedule id → everyone on its layers. */
  schedules: Record<string, readonly string[]>;
  /** Policy name → every target of its steps (`oncall:<schedule>`, `person:<id>`, channel names). */
  escalation: Record<string, readonly string[]>;
}

/** The setup as the config holds it: channels by name, schedules' layers, policies' steps. */
export function setupOf(config: {
  channels: Record<string, { type: string }>;
  schedules: Record<string, { layers: ReadonlyArray<{ participants: readonly string[] }> }>;
  escalation: Record<string, { steps: ReadonlyArray<{ notify: readonly string[] }> }>;
}): ScorecardSetup {
  return {
    channels: Object.fromEntries(Object.entries(config.channels).map(([n, c]) => [n, c.type])),
    schedules: Object.fromEntries(Object.entries(config.schedules).map(([id, s]) => [id, s.layers.flatMap((l) => l.participants)])),
    escalation: Object.fromEntries(Object.entries(config.escalation).map(([name, p]) => [name, p.steps.flatMap((s) => s.notify)])),
  };
}

export interface ScorecardInput {
  report: Omit<Report, 'scorecard'>;
  probes: readonly AlertingProbe[];
  setup: ScorecardSetup;
  attestations: Partial<Record<ChecklistItemId, Attestation>>;
  attestationMaxAgeMs: number;
  now: number;
}

/** A probe definition with the alert the config loader validated: every definition carries it now. */
export type AlertingProbe = ProbeDefinition;

/** A verdict from evidence: `unknown` means no probe or config can tell, and a person should. */
interface Judgement {
  status: ItemStatus;
  evidence: Evidence[];
}

const DAY = 86_400_000;
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

/**
 * The launch checklist's go/no-go scorecard. Each item is judged from probe runs and config where
 * vigil can see it; a person's dated attestation decides only what evidence cannot (an item
 * judged `unknown`), and a stale one counts for nothing. Any critical item not passing is a gap:
 * 0 gaps is GO, anything else NO-GO.
 */
export function scorecard(input: ScorecardInput): Scorecard {
  const judges: Partial<Record<ChecklistItemId, (i: ScorecardInput) => Judgement>> = {
    'backup-restore': backupRestore,
    'tls-everywhere': tlsEverywhere,
    alerting,
    'load-test-10x': loadTest,
    runbooks,
    'oncall-rotation': oncallRotation,
    'centralized-logging': centralizedLogging,
    ...Object.fromEntries(STANDING_CHECKS.map((c) => [c.item, (i: ScorecardInput) => standing(i, c)])),
  };
  const items: ScorecardItem[] = CHECKLIST.map((c) => {
    const judged = judges[c.id]?.(input) ?? { status: 'unknown', evidence: [] };
    const attested = attestation(input, c.id);
    let status = judged.status;
    const evidence = [...judged.evidence];
    if (attested !== undefined) {
      evidence.push(attested.evidence);
      if (status === 'unknown' && attested.valid) status = attested.status;
    }
    if (evidence.length === 0) {
      evidence.push({
        source: 'none',
        detail: c.probed
          ? 'no probe watches this yet; add one or attest it under report.attestations'
          : 'no probe can see this; attest it under report.attestations',
      });
    }
    return { id: c.id, tier: c.tier, title: c.title, status, evidence };
  });
  const gaps = items.filter((i) => i.tier === 'critical' && i.status !== 'pass').map((i) => i.id);
  return {
    verdict: gaps.length === 0 ? 'GO' : 'NO-GO',
    gaps,
    advice:
      gaps.length === 0
        ? 'GO: no critical gaps.'
        : gaps.length === 1
          ? 'NO-GO: one critical gap; fix it now.'
          : `NO-GO: ${gaps.length} critical gaps; delay the launch.`,
    items,
  };
}

function attestation(
  input: ScorecardInput,
  id: ChecklistItemId,
): { status: 'pass' | 'fail'; valid: boolean; evidence: Evidence } | undefined {
  const a = input.attestations[id];
  if (a === undefined) return undefined;
  const at = Date.parse(`${a.date}T00:00:00Z`);
  const age = input.now - at;
  const stale = age > input.attestationMaxAgeMs;
  const future = at > input.now + DAY;
  const note = future
    ? ' (dated in the future: not counted)'
    : stale
      ? ` (older than ${formatDuration(input.attestationMaxAgeMs)}: not counted)`
      : '';
  return {
    status: a.status,
    valid: !stale && !future,
    evidence: { source: 'attestation', detail: `${a.status} by ${a.by}: ${a.evidence}${note}`, at: new Date(at).toISOString() },
  };
}

const probe = (detail: string, probes: string[], at?: string | null): Evidence => ({
  source: 'probe',
  detail,
  probes,
  ...(at ? { at } : {}),
});

function backupRestore({ report }: ScorecardInput): Judgement {
  const drills = report.checklist.restoreDrills;
  const t = report.targets;
  if (drills.length === 0) return { status: 'unknown', evidence: [] };
  const end = Date.parse(report.window.to);
  const evidence: Evidence[] = [];
  let passing = 0;
  for (const d of drills) {
    if (d.lastSuccessAt === null) {
      evidence.push(probe(`no successful restore drill (${d.runs} runs, ${d.failures} failed in the window)`, [d.probeId]));
      continue;
    }
    const problems: string[] = [];
    if (end - Date.parse(d.lastSuccessAt) > t.drillMaxAgeMs) problems.push(`last success older than ${formatDuration(t.drillMaxAgeMs)}`);
    if (d.withinRto === false) problems.push(`restore took ${formatDuration(d.restoreS! * 1000)}, RTO ${formatDuration(t.rtoMs)}`);
    if (d.withinRpo === false) problems.push(`backup was ${formatDuration(d.backupAgeS! * 1000)} old, RPO ${formatDuration(t.rpoMs)}`);
    const facts = `restored a ${d.source} backup in ${d.restoreS === null ? '?' : formatDuration(d.restoreS * 1000)}, backup ${d.backupAgeS === null ? '?' : formatDuration(d.backupAgeS * 1000)} old`;
    evidence.push(probe(problems.length === 0 ? facts : `${facts}: ${problems.join('; ')}`, [d.probeId], d.lastSuccessAt));
    if (problems.length === 0) passing++;
  }
  return { status: passing > 0 && passing === drills.length ? 'pass' : 'fail', evidence };
}

function tlsEverywhere({ report, probes }: ScorecardInput): Judgement {
  const evidence: Evidence[] = [];
  const plain: string[] = [];
  const secured: string[] = [];
  for (const def of probes) {
    const endpoint = reportOf(def).endpoint?.(def);
    if (endpoint === undefined) continue;
    const url = new URL(endpoint.url);
    // Loopback checks (vigil watching itself, sidecars) are not endpoints users reach.
    if (LOOPBACK.test(url.hostname)) continue;
    if (url.protocol === 'https:' || endpoint.redirectsToHttps) secured.push(def.id);
    else plain.push(def.id);
  }
  if (plain.length > 0)
    evidence.push({ source: 'config', detail: `plain http:// without an httpsRedirect check: ${plain.join(', ')}`, probes: plain });
  if (secured.length > 0)
    evidence.push({ source: 'config', detail: `${secured.length} endpoint(s) over https or redirected to it`, probes: secured });
  const bad = report.checklist.tls.filter((c) => c.ok === false);
  const good = report.checklist.tls.filter((c) => c.ok === true);
  for (const c of bad) {
    const why = c.daysRemaining === null ? 'no valid certificate seen' : `${c.daysRemaining} days left (need ${report.targets.tlsMinDays})`;
    evidence.push(probe(`${c.host}: ${c.chainValid === false ? 'chain not trusted; ' : ''}${why}`, [c.probeId]));
  }
  if (good.length > 0) {
    const minDays = Math.min(...good.map((c) => c.daysRemaining ?? Number.POSITIVE_INFINITY));
    evidence.push(
      probe(
        `${good.length} certificate(s) valid and trusted, the soonest expiring in ${minDays} days`,
        good.map((c) => c.probeId),
      ),
    );
  }
  if (plain.length > 0 || bad.length > 0) return { status: 'fail', evidence };
  if (secured.length === 0 && good.length === 0) return { status: 'unknown', evidence };
  return { status: 'pass', evidence };
}

function alerting({ report, probes, setup }: ScorecardInput): Judgement {
  const endpoints = probes.flatMap((def) => {
    const endpoint = reportOf(def).endpoint?.(def);
    return endpoint === undefined ? [] : [{ def, endpoint }];
  });
  if (endpoints.length === 0) return { status: 'unknown', evidence: [] };
  const covered: string[] = [];
  const partial: string[] = [];
  for (const { def, endpoint } of endpoints) {
    const a = def.alert;
    if (a === undefined) continue;
    const routed = a.channels.length > 0 || a.policy !== undefined;
    // A failed run is what the `failures` rule counts, so maxLatency makes slow runs page too.
    const onErrors = a.errorRate !== undefined || a.failures >= 1;
    const onLatency = a.latency !== undefined || endpoint.latencyBound;
    if (routed && onErrors && onLatency) covered.push(def.id);
    else partial.push(`${def.id} (${[!routed && 'pages nobody', !onLatency && 'no latency rule'].filter(Boolean).join(', ')})`);
  }
  const evidence: Evidence[] = [];
  if (covered.length > 0)
    evidence.push({ source: 'config', detail: `error-rate and latency alerts that page someone: ${covered.join(', ')}`, probes: covered });
  if (partial.length > 0) evidence.push({ source: 'config', detail: `alerts short of that: ${partial.join('; ')}` });
  if (Object.keys(setup.channels).length === 0) evidence.push({ source: 'config', detail: 'no channels configured: nothing can be paged' });
  const n = report.incidents.notifications;
  if (n.dead > 0)
    evidence.push({ source: 'probe', detail: `${n.dead} notification(s) could not be delivered in the window (dead-lettered)` });
  else if (n.delivered > 0)
    evidence.push({
      source: 'probe',
      detail: `${n.delivered} notification(s) delivered in the window, p95 ${n.deliveryP95Ms === null ? '?' : formatDuration(n.deliveryP95Ms)} after queueing`,
    });
  const ok = covered.length > 0 && Object.keys(setup.channels).length > 0 && n.dead === 0;
  return { status: ok ? 'pass' : 'fail', evidence };
}

function loadTest({ report }: ScorecardInput): Judgement {
  const runs = report.checklist.loadRuns;
  if (runs.length === 0) return { status: 'unknown', evidence: [] };
  const t = report.targets;
  const evidence = runs.map((r) =>
    r.lastSuccessAt === null
      ? probe(`no successful load run (${r.runs} runs, ${r.failures} failed in the window)`, [r.probeId])
      : probe(
          `${r.script}: p95 ${r.p95Ms === null ? '?' : formatDuration(r.p95Ms)} (target ${formatDuration(t.loadP95Ms)}), error rate ${r.errorRate === null ? '?' : `${(r.errorRate * 100).toFixed(2)} %`}${r.rps === null ? '' : `, ${Math.round(r.rps)} req/s`}`,
          [r.probeId],
          r.lastSuccessAt,
        ),
  );
  return { status: runs.some((r) => r.ok === true) ? 'pass' : 'fail', evidence };
}

function runbooks({ probes }: ScorecardInput): Judgement {
  const alerting = probes.filter((p) => p.alert !== undefined && (p.alert.severity === 'critical' || p.alert.severity === 'error'));
  if (alerting.length === 0) return { status: 'unknown', evidence: [] };
  const without = alerting.filter((p) => p.alert?.runbook === undefined).map((p) => p.id);
  if (without.length === 0)
    return {
      status: 'pass',
      evidence: [
        { source: 'config', detail: `every paging alert links a runbook (${alerting.length})`, probes: alerting.map((p) => p.id) },
      ],
    };
  // Missing links are not proof there are no runbooks: leave it to an attestation when none are linked.
  const linked = alerting.length - without.length;
  return {
    status: linked === 0 ? 'unknown' : 'fail',
    evidence: [{ source: 'config', detail: `paging alerts without alert.runbook: ${without.join(', ')}`, probes: without }],
  };
}

function oncallRotation({ report, probes, setup }: ScorecardInput): Judgement {
  const evidence: Evidence[] = [];
  const rotations = Object.entries(setup.schedules).filter(([, people]) => new Set(people).size >= 2);
  const used = new Set(probes.flatMap((p) => (p.alert?.policy === undefined ? [] : [p.alert.policy])));
  const escalating = Object.entries(setup.escalation).filter(
    ([name, targets]) => used.has(name) && targets.some((t) => t.startsWith('oncall:')),
  );
  if (Object.keys(setup.schedules).length === 0) {
    const provider = Object.values(setup.channels).find((type) => keepsOnCall(type));
    return {
      status: provider !== undefined ? 'unknown' : 'fail',
      evidence: [
        {
          source: 'config',
          detail:
            provider !== undefined
              ? `no schedules in vigil; on-call may live in ${provider} (attest it)`
              : 'no on-call schedule and no channel whose provider keeps on-call (such as pagerduty or opsgenie)',
        },
      ],
    };
  }
  evidence.push({
    source: 'config',
    detail:
      rotations.length > 0
        ? `rotations of two or more people: ${rotations.map(([id, p]) => `${id} (${new Set(p).size})`).join(', ')}`
        : 'every schedule has fewer than two people: nobody to hand over to',
  });
  evidence.push({
    source: 'config',
    detail:
      escalating.length > 0
        ? `escalation policies paging on-call, used by alerts: ${escalating.map(([n]) => n).join(', ')}`
        : 'no alert uses an escalation policy that pages oncall:<schedule>',
  });
  const mtta = report.incidents.mttaMs;
  const slowAck = mtta !== null && mtta > report.targets.mttaMs;
  if (mtta !== null)
    evidence.push({
      source: 'probe',
      detail: `mean time to acknowledge ${formatDuration(mtta)} (target ${formatDuration(report.targets.mttaMs)}) over ${report.incidents.list.filter((i) => i.ackedAt !== null).length} acknowledged incident(s)`,
    });
  return { status: rotations.length > 0 && escalating.length > 0 && !slowAck ? 'pass' : 'fail', evidence };
}

/** A standing-check item: passes when every probe making the check passed every run in the window. */
function standing({ report }: ScorecardInput, c: StandingCheck): Judgement {
  const checks = report.checklist[c.section];
  if (checks.length === 0) return { status: 'unknown', evidence: [] };
  const evidence = checks.map((x) =>
    probe(
      x.runs === 0
        ? `${x.target}: no runs in the window`
        : x.failures === 0
          ? `${x.target} ${c.held} in all ${x.runs} runs`
          : `${x.target} ${c.broke} in ${x.failures} of ${x.runs} runs`,
      [x.probeId],
    ),
  );
  return { status: checks.every((x) => x.ok === true) ? 'pass' : 'fail', evidence };
}

function centralizedLogging({ report }: ScorecardInput): Judgement {
  const canaries = report.checklist.logIngestion;
  if (canaries.length === 0) return { status: 'unknown', evidence: [] };
  const t = report.targets.logIngestionMs;
  const evidence = canaries.map((c) =>
    probe(
      `${c.backend}: a line written was searchable after ${c.p95Ms === null ? '?' : formatDuration(c.p95Ms)} (p95; target ${formatDuration(t)}), ${c.failures} of ${c.runs} runs failed`,
      [c.probeId],
    ),
  );
  return { status: canaries.every((c) => c.ok === true) ? 'pass' : 'fail', evidence };
}
