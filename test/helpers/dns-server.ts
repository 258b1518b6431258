import dgram from 'node:dgram';
import net, { isIP } from 'node:net';

/**
 * A real DNS server for tests: UDP and TCP on the same loopback port, RFC 1035 messages, answering
 * from a zone table the test can change while it runs. Over UDP, an answer larger than the asker's
 * EDNS0 payload size (512 bytes without EDNS0) comes back empty with TC set, as real servers do;
 * TCP carries it whole. It plays a recursive resolver (RA set, follows CNAMEs inside its
 * zone) and an authoritative one (AA set) at once. Written independently of `src/probers/dns-wire.ts`
 * so a bug in one cannot hide behind the same bug in the other.
 */

/** Record types this server can serve. */
export type ZoneType = 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'MX' | 'NS';

/** One record of the zone. MX values are "priority host"; TXT values may be several chunks. */
export interface ZoneRecord {
  type: ZoneType;
  value: string | string[];
  /** Seconds; 300 when left out. */
  ttl?: number;
}

/** How the server treats every query, whatever the zone says. */
export type ServerMode = 'answer' | 'nxdomain' | 'servfail' | 'silent';

/** A running test DNS server. */
export interface TestDnsServer {
  readonly host: string;
  readonly port: number;
  /** The address in vigil's resolver syntax: `127.0.0.1:5353` or `[::1]:5353`. */
  readonly address: string;
  /** Switch to NXDOMAIN or SERVFAIL for every query, or to never answering. */
  mode: ServerMode;
  /** Every query received, in order (also those not answered), and over which transport. */
  readonly queries: Array<{ name: string; type: number; transport: 'udp' | 'tcp' }>;
  /** When false, TCP connections are reset on arrival (a server or firewall with DNS over UDP only). */
  tcp: boolean;
  /** Replaces the records of one name (lower-cased, no trailing dot). */
  set(name: string, records: ZoneRecord[]): void;
  remove(name: string): void;
  close(): Promise<void>;
}

const TYPES: Record<ZoneType, number> = { A: 1, NS: 2, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3 } as const;

/** Starts a server on `host` (127.0.0.1 by default), port 0 unless given, with an optional zone. */
export async function startDnsServer(
  opts: { host?: string; port?: number; zone?: Record<string, ZoneRecord[]> } = {},
): Promise<TestDnsServer> {
  const host = opts.host ?? '127.0.0.1';
  const zone = new Map<string, ZoneRecord[]>();
  for (const [name, records] of Object.entries(opts.zone ?? {})) zone.set(key(name), records);
  let socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  const queries: TestDnsServer['queries'] = [];
  const connections = new Set<net.Socket>();

  const server: TestDnsServer = {
    host,
    port: 0,
    address: '',
    mode: 'answer',
    tcp: true,
    queries,
    set: (name, records) => {
      zone.set(key(name), records);
    },
    remove: (name) => {
      zone.delete(key(name));
    },
    close: async () => {
      for (const c of connections) c.destroy();
      await Promise.all([
        new Promise<void>((resolve) => socket.close(() => resolve())),
        new Promise<void>((resolve) => tcpServer.close(() => resolve())),
      ]);
    },
  };

  const reply = (query: Query): Buffer | undefined => {
    if (server.mode === 'silent') return undefined;
    return server.mode === 'nxdomain'
      ? respond(query, RCODE.NXDOMAIN, [])
      : server.mode === 'servfail'
        ? respond(query, RCODE.SERVFAIL, [])
        : answer(query, zone);
  };

  const onMessage = (msg: Buffer, peer: dgram.RemoteInfo) => {
    const query = parseQuery(msg);
    if (query === undefined) return;
    queries.push({ name: query.name, type: query.type, transport: 'udp' });
    const full = reply(query);
    if (full === undefined) return;
    // Too big for the asker's UDP buffer: the header and question alone, with TC set (RFC 2181 §9).
    const out = full.length > query.udpSize ? truncated(query) : full;
    socket.send(out, peer.port, peer.address);
  };

  // DNS over TCP: each message behind a 2-byte length (RFC 1035 §4.2.2), several per connection.
  const tcpServer = net.createServer((conn) => {
    if (!server.tcp) {
      conn.destroy();
      return;
    }
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    conn.on('error', () => {});
    let buffered = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        const query = parseQuery(msg);
        if (query === undefined) continue;
        queries.push({ name: query.name, type: query.type, transport: 'tcp' });
        const out = reply(query);
        if (out === undefined) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(out.length, 0);
        conn.write(Buffer.concat([length, out]));
      }
    });
  });

  const listen = (target: net.Server | dgram.Socket, port: number) =>
    new Promise<void>((resolve, reject) => {
      target.once('error', reject);
      const bound = () => {
        target.off('error', reject);
        resolve();
      };
      if (target instanceof net.Server) target.listen(port, host, bound);
      else target.bind(port, host, bound);
    });
  // UDP takes a free port, TCP the same number; the rare port taken over TCP only means another try.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    socket.on('message', onMessage);
    await listen(socket, opts.port ?? 0);
    port = socket.address().port;
    try {
      await listen(tcpServer, port);
      break;
    } catch (err) {
      if (opts.port !== undefined || attempt >= 5) throw err;
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    }
  }
  return Object.assign(server, { port, address: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` });
}

interface Query {
  id: number;
  flags: number;
  name: string;
  type: number;
  /** The question section exactly as received, echoed back (keeps the asker's letter case). */
  question: Buffer;
  /** The largest UDP answer the asker takes: its EDNS0 payload size, or 512 without EDNS0. */
  udpSize: number;
}

function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length) {
    const len = msg[at] as number;
    if (len === 0 || len > 63) break;
    labels.push(msg.toString('utf8', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (msg[at] !== 0 || at + 5 > msg.length) return undefined;
  const end = at + 5;
  // An OPT record right after the question: root name (0), type 41, its class the payload size.
  const edns = msg.readUInt16BE(10) >= 1 && end + 5 <= msg.length && msg[end] === 0 && msg.readUInt16BE(end + 1) === 41;
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join('.'),
    type: msg.readUInt16BE(at + 1),
    question: msg.subarray(12, end),
    udpSize: edns ? Math.max(512, msg.readUInt16BE(end + 3)) : 512,
  };
}

/** The header and question of a reply with TC set and no records. */
function truncated(query: Query): Buffer {
  const out = respond(query, RCODE.NOERROR, []);
  out.writeUInt16BE(out.readUInt16BE(2) | 0x0200, 2);
  return out;
}

/** Answers from the zone, following CNAMEs inside it like a resolver would. */
function answer(query: Query, zone: Map<string, ZoneRecord[]>): Buffer {
  const out: Array<{ owner: string; record: ZoneRecord }> = [];
  let owner = query.name;
  for (let hops = 0; hops < 8; hops++) {
    const records = zone.get(key(owner));
    if (records === undefined) return respond(query, out.length > 0 ? RCODE.NOERROR : RCODE.NXDOMAIN, out);
    const direct = records.filter((r) => TYPES[r.type] === query.type);
    if (direct.length > 0) return respond(query, RCODE.NOERROR, [...out, ...direct.map((record) => ({ owner, record }))]);
    const cname = records.find((r) => r.type === 'CNAME');
    if (cname === undefined || query.type === TYPES.CNAME) break;
    out.push({ owner, record: cname });
    owner = String(cname.value);
  }
  return respond(query, RCODE.NOERROR, out); // NODATA: the name exists, not with this type
}

function respond(query: Query, rcode: number, answers: Array<{ owner: string; record: ZoneRecord }>): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  const rd = query.flags & 0x0100;
  header.writeUInt16BE(0x8000 | (query.flags & 0x7800) | 0x0400 | rd | 0x0080 | rcode, 2); // QR, opcode, AA, RD, RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.question, ...answers.map((a) => encodeRecord(a.owner, a.record))]);
}

function encodeRecord(owner: string, record: ZoneRecord): Buffer {
  const rdata = encodeData(record);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPES[record.type], 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(record.ttl ?? 300, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(owner), fixed, rdata]);
}

function encodeData(record: ZoneRecord): Buffer {
  const value = record.value;
  switch (record.type) {
    case 'A':
      return Buffer.from(String(value).split('.').map(Number));
    case 'AAAA':
      return ipv6Bytes(String(value));
    case 'CNAME':
    case 'NS':
      return encodeName(String(value));
    case 'MX': {
      const [priority, exchange] = String(value).split(/\s+/);
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(Number(priority), 0);
      return Buffer.concat([pref, encodeName(exchange ?? '')]);
    }
    case 'TXT': {
      const chunks = Array.isArray(value) ? value : [value];
      return Buffer.concat(
        chunks.map((c) => {
          const bytes = Buffer.from(c, 'utf8');
          return Buffer.concat([Buffer.from([bytes.length]), bytes]);
        }),
      );
    }
  }
}

function encodeName(name: string): Buffer {
  const labels = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l !== '');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)])), Buffer.from([0])]);
}

function ipv6Bytes(text: string): Buffer {
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
