import { type Static, Type } from '@sinclair/typebox';
import { isJsonObject } from '../../lib/fields.js';
import type { SpecProblem } from '../types.js';
import { parseJson, shownUrl, statusLine, type Transport } from './backend.js';

const CANARY = /\{\{\s*([^}]*?)\s*\}\}/g;

/** The request to the application that makes it log the canary (`trigger:` of a log-ingestion definition). */
export const Trigger = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }),
    method: Type.Union([Type.Literal('GET'), Type.Literal('POST'), Type.Literal('PUT'), Type.Literal('PATCH'), Type.Literal('DELETE')], {
      default: 'GET',
      expected: 'GET, POST, PUT, PATCH or DELETE',
    }),
    headers: Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
      default: {},
      expected: 'a map of header names to values',
    }),
    body: Type.Optional(Type.String({ minLength: 1 })),
    /** The status the application must answer; any status when unset (a 500 is what "trigger an error" wants). */
    expectStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, expected: 'an HTTP status such as 200 or 500' })),
  },
  { additionalProperties: false },
);

export type TriggerSpec = Static<typeof Trigger>;

/** `{{canary}}` must appear somewhere, and nothing else may: `${…}` is the secrets' syntax, not this. */
export function checkTrigger(t: TriggerSpec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const templates: Array<[string, string | undefined]> = [
    ['trigger.url', t.url],
    ...Object.entries(t.headers).map(([name, value]): [string, string] => [`trigger.headers.${name}`, value]),
    ['trigger.body', t.body],
  ];
  let carried = false;
  for (const [path, text] of templates) {
    for (const m of text?.matchAll(CANARY) ?? []) {
      if (m[1] === 'canary') carried = true;
      else problems.push({ path, message: `expected {{canary}} as the only placeholder, got {{${m[1]}}}` });
    }
  }
  if (!carried) {
    problems.push({
      path: 'trigger',
      message: 'expected {{canary}} in trigger.url, a header value or trigger.body: the search looks for it in the log',
    });
  }
  if (t.body !== undefined && (t.method === 'GET' || t.method === 'DELETE')) {
    problems.push({ path: 'trigger.body', message: `expected no body with method ${t.method} (use POST, PUT or PATCH)` });
  }
  return problems;
}

/** What the trigger did: the application's status, or why it failed; `shown` is the request as kept with the run. */
export interface Fired {
  status?: number;
  problem?: string;
  shown: string;
}

export async function fireTrigger(t: TriggerSpec, canary: string, transport: Transport, signal: AbortSignal): Promise<Fired> {
  const fill = (text: string, encode: (v: string) => string) =>
    text.replace(CANARY, (whole, name: string) => (name === 'canary' ? encode(canary) : whole));
  const url = new URL(fill(t.url, encodeURIComponent));
  const shown = `${t.method} ${shownUrl(url.href)}`;
  const headers = Object.fromEntries(Object.entries(t.headers).map(([k, v]) => [k, fill(v, (x) => x)]));
  if (t.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const body = t.body === undefined ? undefined : fill(t.body, (x) => x);
  const reply = await transport.send({ method: t.method, url, headers, body }, signal);
  if ('error' in reply) return { problem: `to ${shown} failed: ${reply.error}`, shown };
  if (t.expectStatus !== undefined && reply.status !== t.expectStatus) {
    return { status: reply.status, problem: `${shown} answered ${statusLine(reply.status)}, expected ${t.expectStatus}`, shown };
  }
  return { status: reply.status, shown };
}

/** The verdict on a found line's structure. */
export type FieldsVerdict = { ok: true } | { ok: false; problem: string };

/**
 * The line must be a JSON object carrying every field (`a.b` is a nested field, or a key spelled
 * with the dot). A store that keeps the raw line in `message` (a document whose `message` is the
 * JSON the application logged) is read there too. The message names fields, never values.
 */
export function checkFields(line: string | undefined, fields: readonly string[]): FieldsVerdict {
  if (line === undefined) return { ok: false, problem: 'could not be read (the store returned no line)' };
  const doc = parseJson(line);
  if (!isJsonObject(doc)) return { ok: false, problem: `is not a JSON object (${line.length} characters of plain text)` };
  const inner = typeof doc.message === 'string' ? parseJson(doc.message) : undefined;
  const candidates = isJsonObject(inner) ? [doc, inner] : [doc];
  const missing = candidates
    .map((c) => fields.filter((f) => fieldAt(c, f) === undefined))
    .reduce((best, m) => (m.length < best.length ? m : best));
  if (missing.length === 0) return { ok: true };
  return { ok: false, problem: `lacks the field${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (of ${fields.join(', ')})` };
}

/** A field's value, own keys only; null counts as absent (a logger writing `"user_id": null` did not know it). */
function fieldAt(doc: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(doc, path)) return doc[path] ?? undefined;
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (!isJsonObject(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur ?? undefined;
}
