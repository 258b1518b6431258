// `npm run audit`: `npm audit --omit=dev` and a verdict. Fails on any high or critical finding in
// what ships. When the advisory endpoint cannot be reached (a registry mirror without it), says so
// loudly and does not fail: that is no finding, and no reason to block every build.
import { spawnSync } from 'node:child_process';

const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000 });
let report;
try {
  report = JSON.parse(run.stdout);
} catch {
  process.stderr.write(`npm audit printed no JSON (exit ${run.status}):\n${run.stderr}\n`);
  process.exit(1);
}
if (report.metadata?.vulnerabilities === undefined) {
  const why = report.error?.summary || report.message || report.error?.code || 'unknown error';
  process.stderr.write(`npm audit: WARNING: the advisory endpoint could not be asked (${why}); production dependencies NOT audited\n`);
  process.exit(0);
}
const v = report.metadata.vulnerabilities;
const serious = (v.high ?? 0) + (v.critical ?? 0);
process.stdout.write(
  `npm audit (production dependencies): ${v.critical ?? 0} critical, ${v.high ?? 0} high, ${v.moderate ?? 0} moderate, ${v.low ?? 0} low\n`,
);
if (serious > 0) {
  for (const [name, a] of Object.entries(report.vulnerabilities ?? {})) {
    if (a.severity === 'high' || a.severity === 'critical') process.stderr.write(`  ${a.severity}: ${name} ${a.range ?? ''}\n`);
  }
  process.exit(1);
}
