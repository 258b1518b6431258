import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { decodeRequest, encodeResponse, type ServingStatus, statusNumber } from '../../src/probers/grpc-wire.js';

/** A real grpc-js server on 127.0.0.1 with a grpc.health.v1 service whose answers a test sets. */
export interface HealthServer {
  port: number;
  target: string;
  /** Service name → status, as grpc-go's health server keeps them; "" is the whole server. Unknown names answer NOT_FOUND. */
  statuses: Map<string, ServingStatus>;
  /** The metadata of every Check call received, in order. */
  calls: Array<{ service: string; metadata: Metadata }>;
  /** When set, Check never answers (the call is held until the client gives up). */
  hang: boolean;
  /** Client connections still open (counted by a TCP relay in front of the server). */
  connections(): number;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  /** Serve no health service at all: every call is UNIMPLEMENTED. */
  health?: boolean;
  tls?: { cert: string; key: string; clientCa?: string };
  /** Answer Check with this status code and details instead (e.g. to echo what the client sent). */
  fail?: (service: string, metadata: Metadata) => { code: status; details: string } | undefined;
}

const HEALTH: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    // Wrapped: grpc-js's server takes a falsy request ("", the whole server) for no request at all.
    requestDeserialize: (b: Buffer) => ({ service: decodeRequest(b) }),
    responseSerialize: encodeResponse,
    responseDeserialize: () => 0,
  },
};

export async function startHealthServer(opts: HealthServerOptions = {}): Promise<HealthServer> {
  const server = new Server();
  // grpc-js's server shows no connections; a relay in front of it sees each client's socket close.
  const live = new Set<Socket>();
  let backend = 0;
  const relay = net.createServer((client) => {
    live.add(client);
    const upstream = net.connect(backend, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const drop = () => {
      live.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
  });
  const handle: HealthServer = {
    port: 0,
    target: '',
    statuses: new Map([['', 'SERVING']]),
    calls: [],
    hang: false,
    connections: () => live.size,
    // Held calls would keep a graceful shutdown waiting; the test is over.
    close: async () => {
      server.forceShutdown();
      for (const s of live) s.destroy();
      await new Promise((resolve) => relay.close(resolve));
    },
  };
  if (opts.health !== false) {
    server.addService(HEALTH, {
      Check(call: ServerUnaryCall<{ service: string }, number>, callback: sendUnaryData<number>) {
        const service = call.request.service;
        handle.calls.push({ service, metadata: call.metadata });
        if (handle.hang) return;
        const failure = opts.fail?.(service, call.metadata);
        if (failure) return callback(failure);
        const s = handle.statuses.get(service);
        if (s === undefined) return callback({ code: status.NOT_FOUND, details: 'unknown service' });
        callback(null, statusNumber(s));
      },
    });
  }
  const creds = opts.tls
    ? ServerCredentials.createSsl(
        opts.tls.clientCa === undefined ? null : Buffer.from(opts.tls.clientCa),
        [{ cert_chain: Buffer.from(opts.tls.cert), private_key: Buffer.from(opts.tls.key) }],
        opts.tls.clientCa !== undefined,
      )
    : ServerCredentials.createInsecure();
  backend = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  handle.port = (relay.address() as AddressInfo).port;
  handle.target = `127.0.0.1:${handle.port}`;
  return handle;
}
