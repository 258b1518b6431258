import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';

/** A loopback server started for one test; `close()` also drops the connections still open. */
export interface TestServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** TCP connections accepted so far (a fresh-connection probe opens one per run). */
  readonly connections: number;
  close(): Promise<void>;
}

/** Handles one request of a test HTTP(S) server. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP server on 127.0.0.1, port 0. */
export function startHttp(handler: Handler): Promise<TestServer> {
  return listen(http.createServer(handler), 'http');
}

/** An HTTPS server on 127.0.0.1, port 0, presenting `cert` (leaf plus intermediates, PEM). */
export function startHttps(handler: Handler, tlsOptions: { cert: string; key: string }): Promise<TestServer> {
  return listen(https.createServer(tlsOptions, handler), 'https');
}

/**
 * A bare TCP server on 127.0.0.1, port 0, for peers that do not speak HTTP properly: garbage,
 * silence, a stall half-way. `onConnection` owns the socket; `close()` destroys any left open.
 */
export function startRaw(onConnection: (socket: Socket) => void, scheme = 'http'): Promise<TestServer> {
  return listen(net.createServer(onConnection), scheme);
}

/** A loopback port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const server = await startRaw(() => {});
  await server.close();
  return server.port;
}

async function listen(server: net.Server, scheme: string): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
