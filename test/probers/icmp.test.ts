import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { type IcmpSpec, icmp, parsePing, pingArgs } from '../../src/probers/icmp.js';
import type { ProbeBase } from '../../src/probers/types.js';
import { probeContext } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

type Def = ProbeBase & IcmpSpec;

function def(overrides: Partial<Def> = {}): Def {
  return {
    id: 'gw',
    kind: 'icmp',
    schedule: { every: '1m' },
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    locations: [],
    host: '127.0.0.1',
    count: 3,
    interval: '200ms',
    replyTimeout: '1s',
    ipProtocol: 'auto',
    dontFragment: false,
    binary: 'ping',
    ...overrides,
  };
}

/** True when this machine answers ping on ::1 (a container without IPv6 has no v6 loopback). */
function hasV6Loopback(): boolean {
  try {
    execFileSync('ping', ['-n', '-6', '-c', '1', '-W', '1', '::1'], { stdio: 'ignore', timeout: 3_000 });
    return true;
  } catch {
    return false;
  }
}

/** Pids of running ping processes whose command line names `host`. */
function pingsTo(host: string): number[] {
  const pids: number[] = [];
  for (const entry of execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(entry);
    if (m?.[1] && m[2] && /(^|\/)ping\s/.test(m[2]) && m[2].includes(host)) pids.push(Number(m[1]));
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0 until reaped: its state says it is gone.
    return !/^\S+\s+\(.*\)\s+Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('icmp prober', () => {
  it('pings 127.0.0.1: three replies, no loss, round trips as values', async () => {
    const r = await icmp.probe(def(), probeContext(5_000));
    expect(r).toMatchObject({ ok: true });
    expect(r.values.replies).toBe(3);
    expect(r.values.loss_ratio).toBe(0);
    expect(r.values.rtt_min_ms).toBeGreaterThan(0);
    expect(r.values.rtt_max_ms).toBeGreaterThanOrEqual(r.values.rtt_avg_ms ?? Number.NaN);
    expect(r.values.rtt_avg_ms).toBeGreaterThanOrEqual(r.values.rtt_min_ms ?? Number.NaN);
  });

  it.skipIf(!hasV6Loopback())('pings ::1 over IPv6 (skipped where the machine has no v6 loopback)', async () => {
    const r = await icmp.probe(def({ host: '::1', ipProtocol: 'ip6', count: 2 }), probeContext(5_000));
    expect(r).toMatchObject({ ok: true, values: { replies: 2, loss_ratio: 0 } });
  });

  it('fails with DNS for a name that does not resolve', async () => {
    const r = await icmp.probe(def({ host: 'no-such-host.invalid' }), probeContext(8_000));
    expect(r).toMatchObject({ ok: false, code: 'DNS' });
    expect(r.message).toContain('no-such-host.invalid');
  });

  it('fails with 100% loss against a TEST-NET address that never answers', async () => {
    // TEST-NET-2: routed nowhere. Most networks drop it (TIMEOUT); some routers answer "Net Unreachable" (CONNECT).
    // (192.0.2.1, TEST-NET-1, is the gateway of some CI containers and does answer.)
    const r = await icmp.probe(def({ host: '198.51.100.1', count: 2, replyTimeout: '500ms' }), probeContext(5_000));
    expect(r).toMatchObject({ ok: false, values: { replies: 0, loss_ratio: 1 } });
    if (r.code === 'CONNECT') expect(r.message).toMatch(/no echo reply from 198\.51\.100\.1: From \S+ icmp_seq=\d+ .*Unreachable/);
    else {
      expect(r.code).toBe('TIMEOUT');
      expect(r.message).toMatch(/no echo reply from 198\.51\.100\.1 to 2 requests within 500ms each/);
    }
  });

  it('fails with LOSS when the loss is over maxLoss, and with ASSERTION when the round trip is over maxRtt', async () => {
    // A lossy link is hard to make on loopback: a stand-in ping prints what iputils prints for one.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-icmp-'));
    const fake = path.join(dir, 'ping');
    writeFileSync(
      fake,
      [
        '#!/bin/sh',
        "echo 'PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.'",
        "echo '64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=1.20 ms'",
        "echo '--- 10.0.0.1 ping statistics ---'",
        "echo '4 packets transmitted, 1 received, 75% packet loss, time 3004ms'",
        "echo 'rtt min/avg/max/mdev = 1.200/1.200/1.200/0.000 ms'",
        'exit 1',
        '',
      ].join('\n'),
    );
    chmodSync(fake, 0o755);
    try {
      const lossy = await icmp.probe(def({ host: '10.0.0.1', count: 4, binary: fake, maxLoss: 50 }), probeContext(5_000));
      expect(lossy).toMatchObject({ ok: false, code: 'LOSS', values: { replies: 1, loss_ratio: 0.75, rtt_avg_ms: 1.2 } });
      expect(lossy.message).toBe('75% packet loss to 10.0.0.1 (1 of 4 replies) is over maxLoss 50%');
      // Without maxLoss one reply is enough, as in blackbox_exporter.
      expect(await icmp.probe(def({ host: '10.0.0.1', count: 4, binary: fake }), probeContext(5_000))).toMatchObject({ ok: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // And against loopback: maxLoss 0 passes with every reply; maxRtt far below any round trip fails.
    expect(await icmp.probe(def({ count: 2, maxLoss: 0 }), probeContext(5_000))).toMatchObject({ ok: true });
    const slow = await icmp.probe(def({ count: 2, maxRtt: '0.001ms' }), probeContext(5_000));
    expect(slow).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(slow.message).toMatch(/over maxRtt 0\.001ms/);
  });

  it('reads unreachable answers and duplicates', () => {
    const out = parsePing(
      [
        'From 10.0.0.254 icmp_seq=1 Destination Host Unreachable',
        '64 bytes from 10.0.0.1: icmp_seq=2 ttl=64 time=0.5 ms',
        '64 bytes from 10.0.0.1: icmp_seq=2 ttl=64 time=0.9 ms (DUP!)',
        '3 packets transmitted, 1 received, +1 duplicates, +1 errors, 66.6667% packet loss, time 2003ms',
      ].join('\n'),
    );
    expect(out).toMatchObject({ transmitted: 3, received: 1, errors: 1, rtts: [0.5] });
    expect(out.errorLine).toBe('From 10.0.0.254 icmp_seq=1 Destination Host Unreachable');
  });

  it("maps blackbox's ICMP options to ping's flags, and never lets the host be read as an option", () => {
    const args = pingArgs(
      def({ ipProtocol: 'ip4', sourceIp: '10.0.0.5', dontFragment: true, payloadSize: 1400, ttl: 8, count: 2, interval: '500ms' }),
    );
    expect(args).toEqual([
      '-n',
      '-c',
      '2',
      '-i',
      '0.5',
      '-W',
      '1',
      '-4',
      '-I',
      '10.0.0.5',
      '-M',
      'do',
      '-s',
      '1400',
      '-t',
      '8',
      '--',
      '127.0.0.1',
    ]);
    expect(pingArgs(def({ host: '[::1]', ipProtocol: 'ip6' })).slice(-3)).toEqual(['-6', '--', '::1']);
  });

  it('passes payloadSize, ttl and dontFragment to a real ping on loopback', async () => {
    const r = await icmp.probe(def({ count: 1, payloadSize: 1000, ttl: 3, dontFragment: true }), probeContext(5_000));
    expect(r).toMatchObject({ ok: true, values: { replies: 1 } });
  });

  it('kills ping at the deadline and leaves no ping process behind', async () => {
    // 20 requests a second apart to an address that never answers: only the abort can end this run.
    const host = '198.51.100.77';
    const started = Date.now();
    const run = icmp.probe(def({ host, count: 20, interval: '1s', timeout: '30s' }), probeContext(700));
    await waitFor('ping to start', () => pingsTo(host).length > 0, 2_000);
    const pids = pingsTo(host);
    const r = await run;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(r.message).toMatch(/did not finish before the deadline/);
    await waitFor('the ping process to be gone', () => pids.every((p) => !alive(p)), 2_000);
  });

  it('says how to install ping when the binary is missing', async () => {
    const missing = '/nonexistent/vigil-test/ping';
    expect(existsSync(missing)).toBe(false);
    const r = await icmp.probe(def({ binary: missing }), probeContext(2_000));
    expect(r).toMatchObject({ ok: false, code: 'PING_MISSING' });
    expect(r.message).toMatch(/not found at \/nonexistent\/vigil-test\/ping: install iputils-ping/);
    // And by name, on a PATH without it.
    const byName = await icmp.probe(def({ binary: 'vigil-no-such-ping' }), probeContext(2_000));
    expect(byName.message).toMatch(/not found on PATH/);
  });

  it('probes/examples/icmp.yaml loads through the config loader', () => {
    const example = readFileSync(path.resolve(import.meta.dirname, '../../probes/examples/icmp.yaml'), 'utf8');
    const ws = workspace({ 'config/default.yaml': 'service: { port: 0 }\n', 'probes/icmp.yaml': example });
    try {
      const ids = loadConfig({ cwd: ws.dir, env: {} }).probes.map((p) => `${p.kind}:${p.id}`);
      expect(ids).toEqual(['icmp:loopback-ping', 'icmp:office-gateway', 'icmp:vpn-mtu']);
    } finally {
      ws.remove();
    }
  });

  it('rejects an interval below 200ms and a timeout shorter than the requests need', () => {
    const problems = icmp.check?.(def({ interval: '100ms', count: 10, replyTimeout: '2s', timeout: '2s' })) ?? [];
    expect(problems.map((p) => p.path)).toEqual(['interval', 'timeout']);
    expect(problems[1]?.message).toMatch(/expected more than 2\.90s/);
  });
});
