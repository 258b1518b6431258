import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { codeOf } from '../lib/errors.js';

/**
 * The smallest DNS client that reports what Node's resolver hides: the TTL of CNAME, TXT, MX and NS
 * answers (c-ares returns their data but drops the TTL). One UDP query, one answer, no retries;
 * an answer truncated over UDP (TC set: a large TXT set) is asked again over TCP (RFC 7766).
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
  /** How the answer came: UDP, or TCP after a truncated UDP answer. */
  transport: 'udp' | 'tcp';
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

/**
 * Decodes a response's header and answer section. Throws RangeError on a malformed message, except
 * that a truncated one (TC set) may stop short: it is only read for its flag.
 */
export function decodeResponse(msg: Buffer): WireResponse {
  if (msg.length < HEADER) throw new RangeError('DNS message shorter than its header');
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new RangeError('DNS message is a query, not a response');
  const truncated = (flags & 0x0200) !== 0;
  const answers: WireRecord[] = [];
  try {
    const qdcount = msg.readUInt16BE(4);
    const ancount = msg.readUInt16BE(6);
    let at = HEADER;
    for (let i = 0; i < qdcount; i++) at = skipName(msg, at) + 4;
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
  } catch (err) {
    if (!truncated) throw err;
  }
  return { id: msg.readUInt16BE(0), rcode: flags & 0x000f, truncated, answers };
}

/** Returns the offset just past a (possibly compressed) domain name. */
function skipName(msg: Buffer, start: number): number {
  let at = start;
  // A name has at most 127 labels; the cap also stops a malicious message from looping us.
  for (let labels = 0; labels < 128; labels++) {
    if (at >= msg.length) throw new RangeError('DNS name runs past the message');
    const len = msg.readUInt8(at);
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
 * Asks `server` for `name`/`type` and reports the answer's TTL: over UDP, and over TCP when the UDP
 * answer comes back truncated (a TC answer holds no trustworthy TTL). Both share `signal`'s deadline.
 * Rejects with an error whose `code` is TIMEOUT when `signal` aborts first, TRUNCATED when the TCP
 * retry fails (a server or firewall with DNS over UDP only), or the socket's code (ECONNREFUSED on
 * ICMP unreachable).
 */
export async function queryTtl(server: ServerAddress, name: string, type: RecordType, signal: AbortSignal): Promise<TtlAnswer> {
  const udp = await exchange(server, name, type, signal, udpExchange);
  if (!udp.truncated) return ttlAnswer(udp, type, 'udp');
  try {
    return ttlAnswer(await exchange(server, name, type, signal, tcpExchange), type, 'tcp');
  } catch (err) {
    if (signal.aborted) throw err;
    const code = codeOf(err) || 'ERROR';
    // Said in full: "connection refused" alone reads as a dead server when UDP answers fine.
    throw Object.assign(new Error(`the answer is too large for UDP and DNS over TCP failed (${code})`), { code: 'TRUNCATED', cause: err });
  }
}

function ttlAnswer(res: WireResponse, type: RecordType, transport: TtlAnswer['transport']): TtlAnswer {
  const ttls = res.answers.filter((r) => r.type === TYPE_CODE[type]).map((r) => r.ttl);
  return { rcode: res.rcode, truncated: res.truncated, transport, ...(ttls.length > 0 ? { ttl: Math.max(...ttls) } : {}) };
}

/** Sends `query` and calls `answer` with each message back; `finish` ends the exchange. */
type Transport = (
  server: ServerAddress,
  query: Buffer,
  answer: (msg: Buffer) => void,
  finish: (err: Error | null) => void,
) => { close(): void };

/** One query and its matching response over `transport`, bounded by `signal`. */
function exchange(server: ServerAddress, name: string, type: RecordType, signal: AbortSignal, transport: Transport): Promise<WireResponse> {
  return new Promise<WireResponse>((resolve, reject) => {
    if (signal.aborted) return reject(timeoutError());
    const id = randomInt(0x10000);
    let query: Buffer;
    try {
      query = encodeQuery(id, name, type);
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
