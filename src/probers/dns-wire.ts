import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';

/**
 * The smallest DNS client that reports what Node's resolver hides: the TTL of CNAME, TXT, MX and NS
 * answers (c-ares returns their data but drops the TTL). One UDP query, one answer, no retries.
 */

/** The record types a `dns` probe asks for. */
export type RecordType = 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'MX' | 'NS';

/** RFC 1035 §3.2.2 and RFC 3596 type codes. */
export const TYPE_CODE: Record<RecordType, number> = { A: 1, NS: 2, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };

/** RFC 1035 §4.1.1 RCODEs by name, for messages. */
export const RCODE_NAME: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

/** A DNS server to send a query to. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** What a response says about the TTL of the queried type. */
export interface TtlAnswer {
  rcode: number;
  /** Highest TTL among answer records of the queried type; undefined when there are none. */
  ttl?: number;
  truncated: boolean;
}

/** One answer-section record, reduced to what the TTL check needs. */
export interface WireRecord {
  type: number;
  ttl: number;
}

/** A decoded response header and its answer records. */
export interface WireResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  answers: WireRecord[];
}

const HEADER = 12;
/** EDNS0 payload size advertised: the DNS Flag Day 2020 value that avoids IP fragmentation. */
const EDNS_UDP_SIZE = 1232;

/** Builds a recursive query (RD set) for `name` with an EDNS0 OPT record. */
export function encodeQuery(id: number, name: string, type: RecordType): Buffer {
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
  header.writeUInt16BE(0x0100, 2); // RD: let a recursive resolver recurse; an authoritative one ignores it
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT record
  const question = Buffer.alloc(4);
  question.writeUInt16BE(TYPE_CODE[type], 0);
  question.writeUInt16BE(1, 2); // class IN
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1); // root name (0), type OPT
  opt.writeUInt16BE(EDNS_UDP_SIZE, 3);
  return Buffer.concat([header, qname, question, opt]);
}

/** Decodes a response's header and answer section. Throws RangeError on a malformed message. */
export function decodeResponse(msg: Buffer): WireResponse {
  if (msg.length < HEADER) throw new RangeError('DNS message shorter than its header');
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new RangeError('DNS message is a query, not a response');
  const qdcount = msg.readUInt16BE(4);
  const ancount = msg.readUInt16BE(6);
  let at = HEADER;
  for (let i = 0; i < qdcount; i++) at = skipName(msg, at) + 4;
  const answers: WireRecord[] = [];
  for (let i = 0; i < ancount; i++) {
    at = skipName(msg, at);
    if (at + 10 > msg.length) throw new RangeError('DNS answer record cut short');
    const type = msg.readUInt16BE(at);
    const ttl = msg.readUInt32BE(at + 4);
    const rdlength = msg.readUInt16BE(at + 8);
    at += 10 + rdlength;
    if (at > msg.length) throw new RangeError('DNS answer data cut short');
    answers.push({ type, ttl });
  }
  return { id: msg.readUInt16BE(0), rcode: flags & 0x000f, truncated: (flags & 0x0200) !== 0, answers };
}

/** Returns the offset just past a (possibly compressed) domain name. */
function skipName(msg: Buffer, start: number): number {
  let at = start;
  // A name has at most 127 labels; the cap also stops a malicious message from looping us.
  for (let labels = 0; labels < 128; labels++) {
    if (at >= msg.length) throw new RangeError('DNS name runs past the message');
    const len = msg[at] as number;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) {
      if (at + 2 > msg.length) throw new RangeError('DNS name pointer cut short');
      return at + 2;
    }
    if ((len & 0xc0) !== 0) throw new RangeError(`DNS label type 0x${len.toString(16)} not supported`);
    at += 1 + len;
  }
  throw new RangeError('DNS name has too many labels');
}

/**
 * Asks `server` for `name`/`type` over UDP and reports the answer's TTL. Rejects with an error whose
 * `code` is TIMEOUT when `signal` aborts first, or the socket's code (ECONNREFUSED on ICMP unreachable).
 */
export function queryTtl(server: ServerAddress, name: string, type: RecordType, signal: AbortSignal): Promise<TtlAnswer> {
  return new Promise<TtlAnswer>((resolve, reject) => {
    if (signal.aborted) return reject(timeoutError());
    const id = randomInt(0x10000);
    let query: Buffer;
    try {
      query = encodeQuery(id, name, type);
    } catch (err) {
      return reject(err);
    }
    const socket = dgram.createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const finish = (err: Error | null, answer?: TtlAnswer) => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('message');
      socket.on('error', () => {}); // a late ICMP error after close must not become an uncaught exception
      try {
        socket.close();
      } catch {
        // already closed
      }
      if (err) reject(err);
      else resolve(answer as TtlAnswer);
    };
    const onAbort = () => finish(timeoutError());
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (err) => finish(err));
    socket.on('message', (msg) => {
      let res: WireResponse;
      try {
        res = decodeResponse(msg);
      } catch {
        return; // not a response we can read; keep waiting for a good one until the deadline
      }
      if (res.id !== id) return;
      const ttls = res.answers.filter((r) => r.type === TYPE_CODE[type]).map((r) => r.ttl);
      finish(null, {
        rcode: res.rcode,
        truncated: res.truncated,
        ...(ttls.length > 0 ? { ttl: Math.max(...ttls) } : {}),
      });
    });
    // connect() makes the kernel drop datagrams from anyone but the server, and report ICMP errors.
    socket.connect(server.port, server.host, () => {
      socket.send(query, (err) => {
        if (err) finish(err);
      });
    });
  });
}

function timeoutError(): Error {
  return Object.assign(new Error('DNS query timed out'), { code: 'TIMEOUT' });
}
