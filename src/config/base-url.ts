import { hostname } from 'node:os';

/** Listen addresses that mean "every interface": no link can name them. */
const WILDCARD = new Set(['0.0.0.0', '::', '[::]', '::0']);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1' || host === '[::1]';
}

/**
 * `alerting.baseUrl` when the config gives none: the address vigil listens on, so a page's links
 * reach it. Listening on every interface, that is this machine's name; a loopback address stays
 * `localhost`. The port is the configured one (PORT included).
 */
export function defaultBaseUrl(host: string, port: number): string {
  const name = WILDCARD.has(host) ? hostname() : isLoopback(host) ? 'localhost' : host;
  const shown = name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
  return `http://${shown}:${port}`;
}

/**
 * Whether links in pages would point at the reader's own machine: alerting.baseUrl names loopback
 * while vigil listens where others reach it (a container, a server). Worth a warning at start.
 */
export function linksPointAtLoopback(baseUrl: string, listenHost: string): boolean {
  let host: string;
  try {
    host = new URL(baseUrl).hostname;
  } catch {
    return false;
  }
  return isLoopback(host) && !isLoopback(listenHost);
}
