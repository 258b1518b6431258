import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { codeOf } from '../lib/errors.js';

/**
 * The smallest DNS client that shows everything a `dns` probe judges: every section of the answer
 * in presentation form, the TTLs Node's resolver drops, the RCODE, the class (IN, CH) and the RD
 * bit. One query, one answer, no retries; an answer truncated over UDP (TC set: a large TXT set) is
 * always asked again over TCP (RFC 7766), and `transport: 'tcp'` asks over TCP from the start.
 */

/** The record types a `dns` probe asks for. */
export type RecordType = 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'MX' | 'NS' | 'SOA' | 'SRV' | 'CAA' | 'PTR';

/** The classes a `dns` probe asks in: the Internet, and Chaos for `version.bind`-style server questions. */
export type RecordClass = 'IN' | 'CH';

/** RFC 1035 §3.2.2, RFC 3596, RFC 2782 and RFC 8659 type codes. */
export const TYPE_CODE: Record<RecordType, number> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  CAA: 257,
};
const TYPE_NAME = new Map<number, string>(Object.entries(TYPE_CODE).map(([name, code]) => [code, name]));

/** RFC 1035 §3.2.4 class codes. */
export const CLASS_CODE: Record<RecordClass, number> = { IN: 1, CH: 3 };
const CLASS_NAME = new Map<number, string>([
  [1, 'IN'],
  [3, 'CH'],
  [4, 'HS'],
  [254, 'NONE'],
  [255, 'ANY'],
]);

/** RFC 1035 §4.1.1 and RFC 2136 RCODEs by name: the ones an answer to a query can carry. */
export const RCODE_NAME: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
};

/** A DNS server to send a query to. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** How a query is asked. */
export interface QueryOptions {
  /** IN unless given. */
  class?: RecordClass;
  /** The RD bit: false asks a resolver to answer from what it holds, without recursing. True unless given. */
  recursion?: boolean;
  /** udp (default) falls back to TCP on a truncated answer; tcp asks over TCP only. */
  transport?: 'udp' | 'tcp';
}

/** What a response says about the TTL of the queried type. */
export interface TtlAnswer {
  rcode: number;
  /** Highest TTL among answer records of the queried type; undefined when there are none. */
  ttl?: number;
  truncated: boolean;
  /** How the answer came: UDP, TCP after a truncated UDP answer, or TCP as asked. */
  transport: 'udp' | 'tcp';
}

/** One resource record, decoded. */
export interface WireRecord {
  /** Owner name, fully qualified (trailing dot), as the server spelt it. */
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** The RDATA in presentation form (RFC 1035 §5.1): `10 mx.example.com.`, `"v=spf1 -all"`. */
  data: string;
  /** The value as vigil compares it: names without quoting games, TXT chunks joined unquoted. */
  value: string;
  /** The SOA serial, for SOA records. */
  serial?: number;
}

/** A decoded response: header flags and its three record sections (the OPT pseudo-record left out). */
export interface WireResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  /** AA: the server is authoritative for the name. */
  authoritative: boolean;
  /** RA: the server offers recursion. */
  recursionAvailable: boolean;
  answers: WireRecord[];
  authority: WireRecord[];
  additional: WireRecord[];
}

/** A response and how it came. */
export interface Answer extends WireResponse {
  transport: 'udp' | 'tcp';
}

const HEADER = 12;
/** EDNS0 payload size advertised: the DNS Flag Day 2020 value that avoids IP fragmentation. */
const EDNS_UDP_SIZE = 1232;
const OPT = 41;

/** Builds a query for `name` with an EDNS0 OPT record; RD set unless `recursion` is false. */
export function encodeQuery(id: number, name: string, type: RecordType, opts: QueryOptions = {}): Buffer {
  const labels = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l !== '');
  const qname = Buffer.concat([
    ...labels.map((l) => {
      const bytes = Buffer.from(l, 'utf8');
      if (bytes.length > 63) throw new RangeError(`DNS label longer than 63 bytes: ${l}`);
      return Buffer.concat([Buffer.from([bytes.length]), bytes]);
    }),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(id, 0);
  // RD lets a recursive resolver recurse (an authoritative one ignores it); off asks for its cache or its own zones only.
  header.writeUInt16BE(opts.recursion === false ? 0 : 0x0100, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT record
  const question = Buffer.alloc(4);
  question.writeUInt16BE(TYPE_CODE[type], 0);
  question.writeUInt16BE(CLASS_CODE[opts.class ?? 'IN'], 2);
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(OPT, 1); // root name (0), type OPT
  opt.writeUInt16BE(EDNS_UDP_SIZE, 3);
  return Buffer.concat([header, qname, question, opt]);
}

/**
 * Decodes a response: header and all three sections. Throws RangeError on a malformed message,
 * except that a truncated one (TC set) may stop short: it is only read for its flag.
 */
export function decodeResponse(msg: Buffer): WireResponse {
  if (msg.length < HEADER) throw new RangeError('DNS message shorter than its header');
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new RangeError('DNS message is a query, not a response');
  const truncated = (flags & 0x0200) !== 0;
  const sections: WireRecord[][] = [[], [], []];
  try {
    const qdcount = msg.readUInt16BE(4);
    let at = HEADER;
    for (let i = 0; i < qdcount; i++) at = readName(msg, at).end + 4;
    for (const [s, count] of [msg.readUInt16BE(6), msg.readUInt16BE(8), msg.readUInt16BE(10)].entries()) {
      for (let i = 0; i < count; i++) {
        const owner = readName(msg, at);
        at = owner.end;
        if (at + 10 > msg.length) throw new RangeError('DNS record cut short');
        const type = msg.readUInt16BE(at);
        const rclass = msg.readUInt16BE(at + 2);
        const ttl = msg.readUInt32BE(at + 4);
        const rdlength = msg.readUInt16BE(at + 8);
        const start = at + 10;
        at = start + rdlength;
        if (at > msg.length) throw new RangeError('DNS record data cut short');
        if (type === OPT) continue; // EDNS0's pseudo-record: its "class" is a payload size, not data
        sections[s]?.push({ name: owner.name, type, class: rclass, ttl, ...decodeData(msg, type, start, rdlength) });
      }
    }
  } catch (err) {
    if (!truncated) throw err;
  }
  const [answers = [], authority = [], additional = []] = sections;
  return {
    id: msg.readUInt16BE(0),
    rcode: flags & 0x000f,
    truncated,
    authoritative: (flags & 0x0400) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    answers,
    authority,
    additional,
  };
}

/** A record as blackbox_exporter (miekg/dns) prints it, tab-separated: `example.com.\t3600\tIN\tA\t127.0.0.1`. */
export function presentation(r: WireRecord): string {
  const cls = CLASS_NAME.get(r.class) ?? `CLASS${r.class}`;
  const type = TYPE_NAME.get(r.type) ?? `TYPE${r.type}`;
  return `${r.name}\t${r.ttl}\t${cls}\t${type}\t${r.data}`;
}

/** RDATA of the types vigil knows in presentation form; any other type as RFC 3597 `\\# len hex`. */
function decodeData(msg: Buffer, type: number, start: number, length: number): Pick<WireRecord, 'data' | 'value' | 'serial'> {
  const end = start + length;
  const need = (n: number) => {
    if (length < n) throw new RangeError(`DNS ${TYPE_NAME.get(type) ?? type} record data shorter than ${n} bytes`);
  };
  const same = (data: string) => ({ data, value: data });
  // Names as Node's resolver gives them, without the root's trailing dot.
  const named = (data: string) => ({ data, value: data.replace(/(?<=[^ ])\.(?= |$)/g, '') });
  switch (type) {
    case TYPE_CODE.A:
      need(4);
      return same([...msg.subarray(start, start + 4)].join('.'));
    case TYPE_CODE.AAAA: {
      need(16);
      const groups = Array.from({ length: 8 }, (_, i) => msg.readUInt16BE(start + i * 2).toString(16));
      return same(compressIpv6(groups));
    }
    case TYPE_CODE.NS:
    case TYPE_CODE.CNAME:
    case TYPE_CODE.PTR:
      return named(readName(msg, start).name);
    case TYPE_CODE.MX:
      need(3);
      return named(`${msg.readUInt16BE(start)} ${readName(msg, start + 2).name}`);
    case TYPE_CODE.SRV:
      need(7);
      return named(
        `${msg.readUInt16BE(start)} ${msg.readUInt16BE(start + 2)} ${msg.readUInt16BE(start + 4)} ${readName(msg, start + 6).name}`,
      );
    case TYPE_CODE.SOA: {
      const mname = readName(msg, start);
      const rname = readName(msg, mname.end);
      if (rname.end + 20 > end) throw new RangeError('DNS SOA record data cut short');
      const [serial, refresh, retry, expire, minimum] = [0, 4, 8, 12, 16].map((o) => msg.readUInt32BE(rname.end + o));
      return { ...named(`${mname.name} ${rname.name} ${serial} ${refresh} ${retry} ${expire} ${minimum}`), serial: serial ?? 0 };
    }
    case TYPE_CODE.TXT: {
      const chunks: Buffer[] = [];
      for (let at = start; at < end; ) {
        const len = msg.readUInt8(at);
        if (at + 1 + len > end) throw new RangeError('DNS TXT string runs past its record');
        chunks.push(msg.subarray(at + 1, at + 1 + len));
        at += 1 + len;
      }
      // A long TXT value comes in 255-byte chunks that together are one string (RFC 7208 §3.3).
      return { data: chunks.map(quoted).join(' '), value: chunks.map((c) => c.toString('utf8')).join('') };
    }
    case TYPE_CODE.CAA: {
      need(2);
      const tagLength = msg.readUInt8(start + 1);
      if (2 + tagLength > length) throw new RangeError('DNS CAA tag runs past its record');
      const tag = msg.toString('latin1', start + 2, start + 2 + tagLength);
      return same(`${msg.readUInt8(start)} ${tag} ${quoted(msg.subarray(start + 2 + tagLength, end))}`);
    }
    default:
      return same(`\\# ${length}${length > 0 ? ` ${msg.toString('hex', start, end)}` : ''}`);
  }
}

/** A character-string in presentation form: quoted, `"` and `\\` escaped, other bytes outside printable ASCII as `\\DDD`. */
function quoted(bytes: Buffer): string {
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${String(b).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as `::`. */
function compressIpv6(groups: string[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  if (best.len < 2) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** Reads a (possibly compressed) domain name: its text with a trailing dot, and the offset just past it where it started. */
function readName(msg: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = start;
  let end: number | undefined;
  // A name has at most 127 labels; the cap also stops a malicious message (pointer loops) from looping us.
  for (let steps = 0; steps < 128; steps++) {
    if (at >= msg.length) throw new RangeError('DNS name runs past the message');
    const len = msg.readUInt8(at);
    if (len === 0) return { name: labels.length === 0 ? '.' : `${labels.join('.')}.`, end: end ?? at + 1 };
    if ((len & 0xc0) === 0xc0) {
      if (at + 2 > msg.length) throw new RangeError('DNS name pointer cut short');
      end ??= at + 2;
      at = msg.readUInt16BE(at) & 0x3fff;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new RangeError(`DNS label type 0x${len.toString(16)} not supported`);
    if (at + 1 + len > msg.length) throw new RangeError('DNS label runs past the message');
    labels.push(msg.toString('latin1', at + 1, at + 1 + len).replace(/[.\\]/g, (c) => `\\${c}`));
    at += 1 + len;
  }
  throw new RangeError('DNS name has too many labels');
}

/**
 * Asks `server` for `name`/`type`: over UDP and again over TCP when the UDP answer comes back
 * truncated (a TC answer is not the whole answer), or over TCP only when asked so. Both share
 * `signal`'s deadline. Rejects with an error whose `code` is TIMEOUT when `signal` aborts first,
 * TRUNCATED when the TCP retry fails (a server or firewall with DNS over UDP only), or the
 * socket's code (ECONNREFUSED on ICMP unreachable or a closed TCP port).
 */
export async function query(
  server: ServerAddress,
  name: string,
  type: RecordType,
  signal: AbortSignal,
  opts: QueryOptions = {},
): Promise<Answer> {
  if (opts.transport === 'tcp') return { ...(await exchange(server, name, type, opts, signal, tcpExchange)), transport: 'tcp' };
  const udp = await exchange(server, name, type, opts, signal, udpExchange);
  if (!udp.truncated) return { ...udp, transport: 'udp' };
  try {
    return { ...(await exchange(server, name, type, opts, signal, tcpExchange)), transport: 'tcp' };
  } catch (err) {
    if (signal.aborted) throw err;
    const code = codeOf(err) || 'ERROR';
    // Said in full: "connection refused" alone reads as a dead server when UDP answers fine.
    throw Object.assign(new Error(`the answer is too large for UDP and DNS over TCP failed (${code})`), { code: 'TRUNCATED', cause: err });
  }
}

/** Asks like `query` and reports only the TTL of the queried type (kept for the TTL-over-TCP tests). */
export async function queryTtl(server: ServerAddress, name: string, type: RecordType, signal: AbortSignal): Promise<TtlAnswer> {
  const res = await query(server, name, type, signal);
  const ttls = res.answers.filter((r) => r.type === TYPE_CODE[type]).map((r) => r.ttl);
  return { rcode: res.rcode, truncated: res.truncated, transport: res.transport, ...(ttls.length > 0 ? { ttl: Math.max(...ttls) } : {}) };
}

/** Sends `query` and calls `answer` with each message back; `finish` ends the exchange. */
type Transport = (
  server: ServerAddress,
  query: Buffer,
  answer: (msg: Buffer) => void,
  finish: (err: Error | null) => void,
) => { close(): void };

/** One query and its matching response over `transport`, bounded by `signal`. */
function exchange(
  server: ServerAddress,
  name: string,
  type: RecordType,
  opts: QueryOptions,
  signal: AbortSignal,
  transport: Transport,
): Promise<WireResponse> {
  return new Promise<WireResponse>((resolve, reject) => {
    if (signal.aborted) return reject(timeoutError());
    const id = randomInt(0x10000);
    let query: Buffer;
    try {
      query = encodeQuery(id, name, type, opts);
    } catch (err) {
      return reject(err);
    }
    let done = false;
    let got: WireResponse | undefined;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      conn.close();
      if (err) reject(err);
      else if (got) resolve(got);
      else reject(Object.assign(new Error('DNS server closed the connection without an answer'), { code: 'ECONNRESET' }));
    };
    const onAbort = () => finish(timeoutError());
    signal.addEventListener('abort', onAbort, { once: true });
    const conn = transport(
      server,
      query,
      (msg) => {
        let res: WireResponse;
        try {
          res = decodeResponse(msg);
        } catch {
          return; // not a response we can read; keep waiting for a good one until the deadline
        }
        if (res.id !== id) return;
        got = res;
        finish(null);
      },
      finish,
    );
  });
}

const udpExchange: Transport = (server, query, answer, finish) => {
  const socket = dgram.createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
  socket.once('error', (err) => finish(err));
  socket.on('message', answer);
  // connect() makes the kernel drop datagrams from anyone but the server, and report ICMP errors.
  socket.connect(server.port, server.host, () => {
    try {
      socket.send(query, (err) => {
        if (err) finish(err);
      });
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err))); // the exchange ended (and closed the socket) while it connected
    }
  });
  return {
    close() {
      socket.removeAllListeners('message');
      socket.on('error', () => {}); // a late ICMP error after close must not become an uncaught exception
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
};

/** A DNS message over TCP is framed by a 2-byte length (RFC 1035 §4.2.2); 64 KiB at most, by that. */
const tcpExchange: Transport = (server, query, answer, finish) => {
  const socket = net.connect({ host: server.host, port: server.port });
  let buffered = Buffer.alloc(0);
  socket.on('error', (err) => finish(err));
  socket.on('connect', () => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length, 0);
    socket.write(Buffer.concat([length, query]));
  });
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const size = buffered.readUInt16BE(0);
      if (buffered.length < 2 + size) return;
      answer(buffered.subarray(2, 2 + size));
      buffered = buffered.subarray(2 + size);
    }
  });
  socket.on('end', () => finish(null));
  return { close: () => socket.destroy() };
};

function timeoutError(): Error {
  return Object.assign(new Error('DNS query timed out'), { code: 'TIMEOUT' });
}
