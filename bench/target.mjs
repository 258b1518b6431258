// The benchmark's loopback target, in its own process so its CPU is not counted as vigil's.
// Listens on several loopback addresses (one port) so fresh-connection probes at 1,000/s do not
// exhaust one address pair's ephemeral ports. Prints the port when ready.
import { createServer } from 'node:http';

const addresses = (process.argv[2] ?? '127.0.0.1').split(',');
const body = Buffer.from('{"status":"ok","checks":{"db":"ok"}}');
const handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, connection: 'close' });
  res.end(body);
};
const first = createServer(handler);
first.keepAliveTimeout = 1000;
first.listen(0, addresses[0], () => {
  const { port } = first.address();
  let pending = addresses.length - 1;
  if (pending === 0) process.stdout.write(`${port}\n`);
  for (const a of addresses.slice(1)) {
    createServer(handler).listen(port, a, () => {
      if (--pending === 0) process.stdout.write(`${port}\n`);
    });
  }
});
