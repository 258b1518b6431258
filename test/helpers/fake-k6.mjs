#!/usr/bin/env node
// A stand-in for the k6 binary (which cannot be installed here), following k6's documented CLI:
//   k6 run [--summary-export=FILE | --summary-export FILE] [-e KEY=VAL]… [--out json=FILE]
//          [--new-machine-readable-summary] script.js
// It writes summaries in k6's real formats (copied from ../shared/fixtures) and exits with k6's
// exit codes. What it does is chosen by FAKE_K6_MODE, from `-e FAKE_K6_MODE=…` or from a
// `FAKE_K6_MODE=…` comment in the script:
//   pass        summary with every threshold passed, exit 0
//   thresholds  summary with thresholds failed (`true`), k6's error line, exit 99
//   exception   a script exception on stderr, no summary, exit 107
//   abort       test.abort(): summary, exit 108        fail    test.fail(): summary, exit 110
//   config      invalid configuration, exit 104        exit:N  an error line, exit N
//   noisy       floods stdout and stderr, then exit 103
//   hang        starts a sleeping child, then waits forever; on SIGTERM behaves like k6 (partial
//               summary, exit 105) and the child dies with the group
//   stubborn    like hang, but it and its child ignore SIGTERM: only SIGKILL ends them
// Test hooks (also `-e`): FAKE_K6_ECHO=FILE writes what it was called with; FAKE_K6_PIDS=FILE
// writes {pid, child}; FAKE_K6_FIXTURE=v1 uses the k6 v1.x export without thresholds.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const VALUE_FLAGS = new Set([
  '-u',
  '--vus',
  '-d',
  '--duration',
  '-i',
  '--iterations',
  '-a',
  '--address',
  '-c',
  '--config',
  '--tag',
  '--log-format',
  '--log-output',
  '--summary-trend-stats',
  '--summary-time-unit',
]);

function parseArgs(argv) {
  const opts = { env: {}, outJson: undefined, summaryExport: undefined, newFormat: false, script: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--summary-export') opts.summaryExport = value();
    else if (flag === '-e' || flag === '--env') {
      const kv = value() ?? '';
      const eq = kv.indexOf('=');
      if (eq > 0) opts.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (flag === '-o' || flag === '--out') {
      const out = value() ?? '';
      if (out.startsWith('json=')) opts.outJson = out.slice('json='.length);
    } else if (flag === '--new-machine-readable-summary') opts.newFormat = true;
    else if (VALUE_FLAGS.has(flag)) value();
    else if (!a.startsWith('-')) opts.script = a;
  }
  return opts;
}

const now = () => new Date().toISOString();
const log = (level, msg, extra = '') => process.stderr.write(`time="${now()}" level=${level} msg=${JSON.stringify(msg)}${extra}\n`);

function progress() {
  process.stderr.write('\n          /\\      Grafana   /‾‾/  \n     /\\  /  \\     |\\  __   /  /   \n');
  process.stderr.write('running (0m01.0s), 10/10 VUs, 9 complete and 0 interrupted iterations\n');
  process.stderr.write('default   [  10% ] 10/10 VUs  0m01.0s/0m10.0s\n');
}

const checks = (name, passes, fails, id) => (group) => ({ [name]: { name, path: `::${group}::${name}`, id, passes, fails } });

/** The classic export, as in fixtures/k6-summary-export.json (its groups trimmed to three). */
function classicSummary(thresholdsFailed) {
  const group = (name, id, check) => ({ name, path: `::${name}`, id, groups: {}, checks: check(name) });
  return {
    root_group: {
      name: '',
      path: '',
      id: 'd41d8cd98f00b204e9800998ecf8427e',
      groups: {
        'Get Schedules': group(
          'Get Schedules',
          '1ff9489e4aecbab4130dffcc3e5cd03a',
          checks('load schedules success', 3483, 1, 'd7930b0532faef923b00592c74568498'),
        ),
        'Claim Entry': group(
          'Claim Entry',
          '7127c92ddd7507150af1be4973a1cc3e',
          checks('claim entry success', 0, 3332, '11cbf43e5ec4ddf6af6487213c5868f2'),
        ),
        'Payment Callback': group(
          'Payment Callback',
          '7f0747d5b7ab2dc2964e62eb9d76d72f',
          checks('payment callback', 3226, 0, '1402e9ec9d57e38c861bce20004ffa8a'),
        ),
      },
      checks: {},
    },
    metrics: {
      http_req_duration: {
        'p(95)': 6927.50588999999,
        'p(99)': 12966.030854999995,
        avg: 1812.8683514793527,
        min: 28.1663,
        med: 836.8969,
        max: 30050.0404,
        'p(90)': 4663.588480000001,
        thresholds: { 'p(95)<3000': thresholdsFailed },
      },
      iterations: { count: 3226, rate: 10.96007814637641 },
      vus_max: { value: 300, min: 300, max: 300 },
      'http_req_duration{expected_response:true}': {
        'p(95)': 6949.685519999993,
        'p(99)': 12968.564687999928,
        avg: 1829.004094562444,
        min: 28.1663,
        med: 861.5236,
        max: 29200.1046,
        'p(90)': 4661.6605800000025,
      },
      vus: { max: 300, value: 300, min: 1 },
      http_req_failed: { passes: 3335, fails: 16809, thresholds: { 'rate<0.05': thresholdsFailed }, value: 0.16555798252581413 },
      iteration_duration: {
        avg: 10118.353049813995,
        min: 242.5013,
        med: 7125.1161,
        max: 57787.2493,
        'p(90)': 23351.75355,
        'p(95)': 29724.902000000002,
        'p(99)': 41624.903875,
      },
      checks: { passes: 16809, fails: 3335, value: 0.8344420174741859 },
      http_reqs: { count: 20144, rate: 68.43763613781972 },
      data_received: { count: 16590430, rate: 56364.6649975163 },
      data_sent: { count: 4619593, rate: 15694.699406216194 },
    },
  };
}

/** As fixtures/k6-summary-export-v1-no-thresholds.json (a subset of its metrics). */
function v1Summary() {
  return {
    root_group: { groups: {}, checks: {}, name: '', path: '', id: 'd41d8cd98f00b204e9800998ecf8427e' },
    metrics: {
      http_req_failed: { passes: 0, fails: 1587, value: 0 },
      vus_max: { value: 15, min: 10, max: 15 },
      http_req_duration: {
        avg: 3.8487845677378676,
        min: 1.523364,
        med: 3.558046,
        max: 21.068284,
        'p(90)': 5.2534876000000015,
        'p(95)': 7.593239699999984,
      },
      dropped_iterations: { count: 17, rate: 5.6599559078714154 },
      iterations: { rate: 528.3735309289374, count: 1587 },
      http_reqs: { count: 1587, rate: 528.3735309289374 },
    },
  };
}

/** As fixtures/k6-new-machine-readable-summary.json (`--new-machine-readable-summary`). */
function newSummary(script) {
  return {
    config: { duration: 0.012345, execution: 'local', script: readFileSync(script, 'utf8').slice(0, 200) },
    metadata: { generated_at: now(), k6_version: '1.5.0' },
    results: {
      checks: {
        metrics: [
          { contains: 'default', name: 'checks_total', type: 'counter', values: { count: 1 } },
          { contains: 'default', name: 'checks_failed', type: 'rate', values: { matches: 0, rate: 0, total: 1 } },
          { contains: 'default', name: 'checks_succeeded', type: 'rate', values: { matches: 1, rate: 1, total: 1 } },
        ],
        results: [{ fails: 0, name: 'TRUE is TRUE', passes: 1 }],
      },
      metrics: [
        {
          contains: 'time',
          name: 'iteration_duration',
          type: 'trend',
          values: { avg: 0.123, max: 0.123, med: 0.123, min: 0.123, p90: 0.123, p95: 0.123 },
        },
        { contains: 'default', name: 'iterations', type: 'counter', values: { count: 1 } },
        { contains: 'data', name: 'data_sent', type: 'counter', values: { count: 0 } },
        { contains: 'data', name: 'data_received', type: 'counter', values: { count: 0 } },
      ],
    },
    version: '1.0.0',
  };
}

function writeSummary(opts, thresholdsFailed) {
  if (opts.outJson) {
    const lines = [
      {
        type: 'Metric',
        data: { name: 'http_reqs', type: 'counter', contains: 'default', thresholds: [], submetrics: null },
        metric: 'http_reqs',
      },
      { type: 'Point', data: { time: now(), value: 1, tags: { method: 'GET', status: '200' } }, metric: 'http_reqs' },
    ];
    writeFileSync(opts.outJson, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  }
  if (!opts.summaryExport) return;
  const doc = opts.newFormat ? newSummary(opts.script) : opts.env.FAKE_K6_FIXTURE === 'v1' ? v1Summary() : classicSummary(thresholdsFailed);
  writeFileSync(opts.summaryExport, JSON.stringify(doc, null, 4));
}

function hang(opts, stubborn) {
  const code = stubborn ? "process.on('SIGTERM',()=>{});setInterval(()=>{},1e6)" : 'setInterval(()=>{},1e6)';
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  if (opts.env.FAKE_K6_PIDS) writeFileSync(opts.env.FAKE_K6_PIDS, JSON.stringify({ pid: process.pid, child: child.pid }));
  process.on('SIGTERM', () => {
    if (stubborn) return;
    log('info', 'Stopping k6 in response to signal...', ' sig=terminated');
    writeSummary({ ...opts, env: { ...opts.env, FAKE_K6_FIXTURE: 'v1' } }, false);
    process.exit(105);
  });
  setInterval(() => {}, 1e6);
}

function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'version') {
    process.stdout.write('k6 v0.54.0 (fake k6 for vigil tests)\n');
    return 0;
  }
  if (command !== 'run') {
    process.stderr.write(`Error: unknown command ${JSON.stringify(command ?? '')} for "k6"\n`);
    return 255;
  }
  const opts = parseArgs(rest);
  if (!opts.script) {
    log('error', 'k6 needs at least one argument to load the test');
    return 255;
  }
  let source;
  try {
    source = readFileSync(opts.script, 'utf8');
  } catch {
    log('error', `The moduleSpecifier "${opts.script}" couldn't be found on local disk.`);
    return 255;
  }
  if (opts.env.FAKE_K6_ECHO) {
    const echo = { argv: process.argv.slice(2), env: opts.env, summaryExport: opts.summaryExport, script: opts.script, cwd: process.cwd() };
    writeFileSync(opts.env.FAKE_K6_ECHO, JSON.stringify(echo));
  }
  const mode = opts.env.FAKE_K6_MODE ?? /FAKE_K6_MODE=([\w:-]+)/.exec(source)?.[1] ?? 'pass';
  const where = pathToFileURL(path.resolve(opts.script)).href;
  progress();
  switch (mode) {
    case 'pass':
      writeSummary(opts, false);
      return 0;
    case 'thresholds':
      writeSummary(opts, true);
      log('error', "thresholds on metrics 'http_req_duration, http_req_failed' have been crossed");
      return 99;
    case 'exception':
      log('error', `ReferenceError: foo is not defined\n\tat default (${where}:5:3(12))\n`, ' hint="script exception"');
      return 107;
    case 'abort':
      writeSummary(opts, false);
      log('error', `test aborted: TARGET answered 503 at default (${where}:9:14(35))`);
      return 108;
    case 'fail':
      writeSummary(opts, false);
      log('error', 'test run was marked as failed');
      return 110;
    case 'config':
      log('error', 'invalid duration "forever" in scenarios.ramp.stages[0].duration');
      return 104;
    case 'noisy':
      process.stdout.write('x'.repeat(1 << 20));
      for (let i = 0; i < 2000; i++) process.stderr.write(`running (0m${i}s), 10/10 VUs, ${i} complete and 0 interrupted iterations\n`);
      log('error', 'engine failed after the flood');
      return 103;
    case 'hang':
    case 'stubborn':
      hang(opts, mode === 'stubborn');
      return undefined;
    default: {
      const code = /^exit:(\d+)$/.exec(mode);
      if (!code) {
        log('error', `unknown FAKE_K6_MODE ${mode}`);
        return 255;
      }
      log('error', `fake k6 failure with exit code ${code[1]}`);
      return Number(code[1]);
    }
  }
}

const code = main();
if (code !== undefined) process.exitCode = code;
