import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { VigilError } from '../lib/errors.js';

/** A configured API token. */
export interface ApiToken {
  name: string;
  token: string;
  role: 'viewer' | 'operator' | 'admin';
}

const RANK = { viewer: 0, operator: 1, admin: 2 } as const;

/** Who made a request, by the token they presented. */
export interface Caller {
  name: string;
  role: ApiToken['role'];
}

const BEARER = /^bearer[ \t]+/i;

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Checks the bearer token against every configured one in constant time (hashes of equal length,
 * compared with timingSafeEqual, all of them, so timing says nothing of which or how much matched).
 */
export function authenticate(tokens: readonly ApiToken[], req: FastifyRequest, need: ApiToken['role']): Caller {
  if (tokens.length === 0) {
    throw new VigilError('VIGIL_ERR_UNAUTHORIZED', 'writes need a bearer token, and none is configured: add auth.tokens to the config');
  }
  const header = req.headers.authorization;
  // The scheme is case-insensitive (RFC 7235 §2.1): `bearer x` and `BEARER x` are the same credential.
  const scheme = typeof header === 'string' ? BEARER.exec(header) : null;
  const given = scheme ? scheme.input.slice(scheme[0].length).trim() : undefined;
  if (!given) throw new VigilError('VIGIL_ERR_UNAUTHORIZED', 'missing bearer token: send Authorization: Bearer <token>');
  const g = digest(given);
  let found: ApiToken | undefined;
  for (const t of tokens) if (timingSafeEqual(g, digest(t.token)) && found === undefined) found = t;
  if (!found) throw new VigilError('VIGIL_ERR_UNAUTHORIZED', 'unknown bearer token');
  // Known from here on, refused or not: the audit log names who tried.
  req.caller = { name: found.name, role: found.role };
  if (RANK[found.role] < RANK[need])
    throw new VigilError('VIGIL_ERR_FORBIDDEN', `token "${found.name}" has role ${found.role}; this needs ${need}`);
  return req.caller;
}
