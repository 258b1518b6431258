import { connect, type Socket } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/index.js';
import { memoryLogger } from '../helpers/context.js';

// vigil's stop closes its HTTP server within a grace: a client that sends half a body (or never
// reads a large answer) must not hold a SIGTERM until Node's 5-minute request timeout.

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

async function listening() {
  const app = Fastify();
  let arrived = () => {};
  const received = new Promise<void>((r) => (arrived = r));
  app.addHook('onRequest', async () => arrived());
  app.post('/echo', async (req) => ({ got: req.body }));
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    return { done: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return { app, port, received };
}

/** A raw client that sends a request's headers and part of its body, then nothing more. */
async function halfBody(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  // Flowing, so the server's close reaches it as an end.
  socket.resume();
  socket.write('POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":');
  return socket;
}

describe('closeServer', () => {
  it('closes a connection stuck mid-body once the grace has passed, and says so', async () => {
    const { app, port, received } = await listening();
    const socket = await halfBody(port);
    await received;
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    const logs = memoryLogger('info');
    const t0 = performance.now();
    await closeServer(app, 400, logs.logger);
    const took = performance.now() - t0;
    await ended;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(5_000);
    expect(logs.lines).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'closing HTTP connections still open after the grace', graceMs: 400 }),
    );
  });

  it('lets a request in flight finish inside the grace, and closes at once when nothing is open', async () => {
    const { app, port } = await listening();
    const answer = fetch(`http://127.0.0.1:${port}/slow`).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 50));
    const logs = memoryLogger('info');
    await closeServer(app, 5_000, logs.logger);
    expect(await answer).toEqual({ done: true });
    expect(logs.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });
});
