// The flood of `npm run bench -- --only flood`, in a process of its own so generating it does not
// delay the /health poller that measures vigil. Usage:
//   node bench/flood-load.mjs PORT CONNECTIONS SECONDS ADDRESSES
// CONNECTIONS keep-alive connections (spread over the loopback ADDRESSES as source addresses), each
// sending one request after another for SECONDS with a wrong bearer token: reads, writes and 404s.
// Prints one JSON line: requests, statuses, errors.
import { Client } from 'undici';

const [port, connections, seconds, addressList] = process.argv.slice(2);
const addresses = addressList.split(',');
const end = Date.now() + Number(seconds) * 1000;
const wrong = { authorization: 'Bearer not-a-token-0123456789abcdef' };
const ROUTES = [
  { method: 'GET', path: '/api/v1/probes', headers: wrong },
  {
    method: 'POST',
    path: '/api/v1/silences',
    headers: { ...wrong, 'content-type': 'application/json' },
    body: '{"comment":"x","duration":"1h"}',
  },
  { method: 'GET', path: '/api/v1/no-such-route', headers: wrong },
  { method: 'POST', path: '/api/v1/probes/p0/run', headers: wrong },
];

const statuses = {};
let requests = 0;
let errors = 0;
const errorCodes = {};

async function connection(i) {
  const client = new Client(`http://127.0.0.1:${port}`, {
    localAddress: addresses[i % addresses.length],
    connections: 1,
    pipelining: 1,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    connectTimeout: 10_000,
  });
  let n = i;
  while (Date.now() < end) {
    const r = ROUTES[n++ % ROUTES.length];
    try {
      const res = await client.request(r);
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      requests++;
    } catch (err) {
      errors++;
      const code = err.code ?? err.name;
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      // A refused or reset connection: back off a little instead of spinning.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await client.close().catch(() => {});
}

await Promise.all(Array.from({ length: Number(connections) }, (_, i) => connection(i)));
process.stdout.write(`${JSON.stringify({ requests, statuses, errors, errorCodes })}\n`);
