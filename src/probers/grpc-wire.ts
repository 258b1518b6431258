/**
 * The two grpc.health.v1 messages in protobuf's wire format, by hand: the probe needs one string
 * field out and one enum field back, which is not worth a .proto loader at run time.
 *
 *   message HealthCheckRequest  { string service = 1; }
 *   message HealthCheckResponse { ServingStatus status = 1; }
 */

/** HealthCheckResponse.ServingStatus, by number. */
export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export type ServingStatus = (typeof SERVING_STATUS)[number];

/** The status name of a number, or `STATUS_<n>` for one this version of the enum does not know. */
export function statusName(n: number): string {
  return SERVING_STATUS[n] ?? `STATUS_${n}`;
}

export function statusNumber(name: ServingStatus): number {
  return SERVING_STATUS.indexOf(name);
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export function encodeRequest(service: string): Buffer {
  // proto3 leaves a field at its default out: "" is the empty message.
  if (service === '') return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([(1 << 3) | WIRE_LEN]), varint(bytes.length), bytes]);
}

export function decodeRequest(buf: Buffer): string {
  let service = '';
  for (const f of fields(buf)) if (f.field === 1 && f.bytes !== undefined) service = f.bytes.toString('utf8');
  return service;
}

export function encodeResponse(status: number): Buffer {
  if (status === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([(1 << 3) | WIRE_VARINT]), varint(status)]);
}

/** The status number of a response; throws on bytes that are not a protobuf message (grpc-js turns that into INTERNAL). */
export function decodeResponse(buf: Buffer): number {
  let status = 0;
  for (const f of fields(buf)) if (f.field === 1 && f.value !== undefined) status = f.value;
  return status;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

interface Field {
  field: number;
  value?: number;
  bytes?: Buffer;
}

/** The fields of a message in order; unknown ones are skipped by their wire type, as protobuf requires. */
function* fields(buf: Buffer): Generator<Field> {
  let at = 0;
  const readVarint = (): number => {
    let n = 0;
    let scale = 1;
    // Ten bytes hold any 64-bit varint; more is a corrupt message, not a longer number.
    for (let i = 0; i < 10; i++) {
      const b = buf[at++];
      if (b === undefined) throw new Error('truncated protobuf varint');
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return n;
      scale *= 128;
    }
    throw new Error('protobuf varint longer than 10 bytes');
  };
  while (at < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === WIRE_VARINT) yield { field, value: readVarint() };
    else if (wire === WIRE_LEN) {
      const len = readVarint();
      if (at + len > buf.length) throw new Error('truncated protobuf field');
      yield { field, bytes: buf.subarray(at, at + len) };
      at += len;
    } else if (wire === WIRE_I64 || wire === WIRE_I32) {
      at += wire === WIRE_I64 ? 8 : 4;
      if (at > buf.length) throw new Error('truncated protobuf field');
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}
