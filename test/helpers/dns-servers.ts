import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/**
 * Real DNS servers from Debian for the dns probe's tests: nsd (authoritative), unbound (recursive)
 * and dnsmasq (a small forwarder with records of its own). Each runs as a foreground child on a
 * free loopback port, with every file it writes in a temp dir of its own, and `stop()` kills it and
 * waits for it to exit. The binaries come from the distribution (CI installs them: .ci/run); a test
 * file asks `missingDnsServer()` and skips with the reason when one is absent.
 */

const BINARIES = { nsd: '/usr/sbin/nsd', unbound: '/usr/sbin/unbound', dnsmasq: '/usr/sbin/dnsmasq' } as const;
/** The servers this helper starts. */
export type DnsServerName = keyof typeof BINARIES;

/** Why these servers cannot run here (a skip reason), or undefined when they all can. */
export function missingDnsServer(...names: DnsServerName[]): string | undefined {
  const absent = names.filter((n) => !existsSync(BINARIES[n]));
  if (absent.length === 0) return undefined;
  return `${absent.map((n) => BINARIES[n]).join(', ')} not installed (Debian packages nsd, unbound, dnsmasq-base; .ci/run installs them)`;
}

/** A real DNS server running as a child of the test. */
export interface RealDnsServer {
  readonly name: DnsServerName;
  readonly port: number;
  readonly host: string;
  /** In vigil's resolver syntax: `127.0.0.1:5353`. */
  readonly address: string;
  /** Its temp dir (config, zone files, pid and state files). */
  readonly dir: string;
  /** What it has printed so far, for failure messages. */
  output(): string;
  /** Kills it, waits for it to exit, removes its temp dir. */
  stop(): Promise<void>;
}

/** An nsd instance; its zones can be rewritten and reloaded while it runs. */
export interface NsdServer extends RealDnsServer {
  /** Writes a zone file (the zone must have been given at start) and has nsd reload it (SIGHUP). */
  reload(zone: string, text: string): Promise<void>;
}

/**
 * Starts nsd serving `zones` (zone name → zone file text), on 127.0.0.1 and a free port unless
 * given: two instances on 127.0.0.1 and 127.0.0.2 with one port are a zone's two nameservers.
 */
export async function startNsd(zones: Record<string, string>, at: { host?: string; port?: number } = {}): Promise<NsdServer> {
  return start('nsd', at, async (dir, port, host) => {
    for (const [zone, text] of Object.entries(zones)) await writeFile(join(dir, `${zone}.zone`), text);
    const conf = [
      'server:',
      `  port: ${port}`,
      `  ip-address: ${host}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${dir}"`,
      `  pidfile: "${dir}/nsd.pid"`,
      `  xfrdfile: "${dir}/xfrd.state"`,
      `  zonelistfile: "${dir}/zone.list"`,
      '  database: ""',
      '  server-count: 1',
      '  verbosity: 1',
      'remote-control:',
      '  control-enable: no',
      ...Object.keys(zones).flatMap((zone) => ['zone:', `  name: ${zone}`, `  zonefile: ${zone}.zone`]),
    ];
    await writeFile(join(dir, 'nsd.conf'), `${conf.join('\n')}\n`);
    return [BINARIES.nsd, ['-d', '-c', join(dir, 'nsd.conf')]];
  }).then((s) =>
    Object.assign(s, {
      async reload(zone: string, text: string) {
        if (!Object.hasOwn(zones, zone)) throw new Error(`nsd was not started with zone ${zone}`);
        await writeFile(join(s.dir, `${zone}.zone`), text);
        // NSD 4 re-reads changed zone files on SIGHUP; the caller waits for the new data to be served.
        s.child.kill('SIGHUP');
      },
    }),
  );
}

/** What unbound serves: its own local data, and zones it asks a given server for (stub zones). */
export interface UnboundOptions {
  /** `local-zone` lines, like `"local.test." static`. */
  localZones?: string[];
  /** `local-data` records, like `"web.local.test. 60 IN A 192.0.2.30"`. */
  localData?: string[];
  /** Zones whose queries go to an authoritative server on loopback (nsd). */
  stubZones?: Array<{ name: string; port: number }>;
  /** `allow` (default) refuses queries without RD; `allow_snoop` answers them from the cache. */
  access?: 'allow' | 'allow_snoop';
  /** More `server:` lines, like `do-udp: no`. */
  server?: string[];
}

/** Starts unbound as a recursive resolver that knows only what `opts` gives it (no root hints are reached). */
export async function startUnbound(opts: UnboundOptions): Promise<RealDnsServer> {
  return start('unbound', {}, async (dir, port) => {
    const conf = [
      'server:',
      '  interface: 127.0.0.1',
      `  port: ${port}`,
      '  do-daemonize: no',
      '  username: ""',
      '  chroot: ""',
      `  directory: "${dir}"`,
      '  pidfile: ""',
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 1',
      '  num-threads: 1',
      '  do-ip6: no',
      `  access-control: 127.0.0.0/8 ${opts.access ?? 'allow'}`,
      // Stub zones point at 127.0.0.1, which unbound refuses to ask unless told.
      '  do-not-query-localhost: no',
      // No DNSSEC validation: the test zones are unsigned and there is no trust anchor to fetch.
      '  module-config: "iterator"',
      // unbound answers NXDOMAIN itself for the RFC 6761 names (test., invalid., …); the test zones live under test.
      '  local-zone: "test." nodefault',
      ...(opts.server ?? []).map((line) => `  ${line}`),
      ...(opts.localZones ?? []).map((z) => `  local-zone: ${z}`),
      ...(opts.localData ?? []).map((d) => `  local-data: ${JSON.stringify(d)}`),
      ...(opts.stubZones ?? []).flatMap((z) => ['stub-zone:', `  name: "${z.name}"`, `  stub-addr: 127.0.0.1@${z.port}`]),
      'remote-control:',
      '  control-enable: no',
    ];
    await writeFile(join(dir, 'unbound.conf'), `${conf.join('\n')}\n`);
    return [BINARIES.unbound, ['-d', '-c', join(dir, 'unbound.conf')]];
  });
}

/** Starts dnsmasq with no upstream, no hosts file, serving only what `records` says (its own options, like `--address=/a.test/192.0.2.1`). */
export async function startDnsmasq(records: string[]): Promise<RealDnsServer> {
  return start('dnsmasq', {}, async (_dir, port) => [
    BINARIES.dnsmasq,
    [
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--no-poll',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--pid-file=',
      `--user=${userInfo().username}`,
      '--log-facility=-',
      ...records,
    ],
  ]);
}

type Setup = (dir: string, port: number, host: string) => Promise<[string, string[]]>;

/** Starts a server on a free port (unless given); a port taken between choosing and binding means another try. */
async function start(
  name: DnsServerName,
  at: { host?: string; port?: number },
  setup: Setup,
): Promise<RealDnsServer & { child: ChildProcess }> {
  const host = at.host ?? '127.0.0.1';
  const reason = missingDnsServer(name);
  if (reason) throw new Error(reason);
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), `vigil-${name}-`));
    const port = at.port ?? (await freePort(host));
    const [bin, args] = await setup(dir, port, host);
    const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const stop = async () => {
      if (!gone) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitFor(
        `${name} listening on ${host}:${port}`,
        async () => {
          if (gone) throw new Error(`${name} exited`);
          return tcpOpen(host, port);
        },
        10_000,
        () => out.slice(-2_000),
      );
    } catch (err) {
      await stop();
      if (at.port === undefined && attempt < 3 && /address already in use|can't bind|could not open/i.test(out)) continue;
      throw err;
    }
    return { name, host, port, address: `${host}:${port}`, dir, child, output: () => out, stop };
  }
}

/** A port free for both UDP and TCP on `host` at this moment. */
async function freePort(host: string): Promise<number> {
  for (;;) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, host, resolve));
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (ok) return port;
  }
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
