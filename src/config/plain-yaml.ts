/**
 * A fast reader for the plain YAML that config and probe files are made of: block mappings and
 * sequences, one-line scalars (plain, quoted without escapes, `[]`, `{}`), comments. The `yaml`
 * package takes ~7 s and ~500 MB to read one 60,000-probe file (its lexer, CST and Document AST);
 * this reads it in a fraction of that and keeps nothing but the values.
 *
 * It never guesses: on anything outside that subset (anchors, tags, flow collections, block or
 * multi-line scalars, escapes, duplicate keys, tabs, document markers, …) it returns undefined and
 * the caller parses the text with `yaml`, which also words every syntax error with its line. What it
 * does return is what `yaml`'s `parse()` returns for the same text (YAML 1.2 core schema).
 */
import type { Json } from './run.js';

/** Not in the subset this reader takes: the caller falls back to the full parser. */
const OUTSIDE = Symbol('outside the plain subset');

interface Line {
  indent: number;
  /** The line without its indentation (comments not yet removed). */
  text: string;
}

/** The value of a plain YAML text, or undefined when the text needs the full parser. */
export function parsePlainYaml(text: string): Json | undefined {
  // Tabs, CR line ends, a BOM or NUL: legal in places, but the full parser knows where.
  if (/[\t\r\ufeff\0]/.test(text)) return undefined;
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    let indent = 0;
    while (raw.charCodeAt(indent) === 32) indent++;
    if (indent === raw.length || raw.charCodeAt(indent) === 35 /* # */) continue;
    if (indent === 0 && /^(---|\.\.\.|%)/.test(raw)) return undefined;
    lines.push({ indent, text: indent === 0 ? raw : raw.slice(indent) });
  }
  if (lines.length === 0) return undefined;
  const reader = new Reader(lines);
  try {
    const value = reader.block(lines[0]?.indent ?? 0);
    return reader.done() ? value : undefined;
  } catch (err) {
    if (err === OUTSIDE) return undefined;
    throw err;
  }
}

/** `key:` at the start of a mapping line: a plain key of letters, digits and `_ . / -`, then `:` and a space or the end. */
const KEY = /^([A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +|$)/;

class Reader {
  private pos = 0;
  /** Repeated values (kinds, schedules, timeouts) kept once rather than once per probe. */
  private readonly interned = new Map<string, string>();

  constructor(private readonly lines: Line[]) {}

  done(): boolean {
    return this.pos === this.lines.length;
  }

  /** The mapping or sequence whose first line is the current one, at `indent`. */
  block(indent: number): Json {
    const line = this.lines[this.pos];
    if (line === undefined || line.indent !== indent) throw OUTSIDE;
    if (isItem(line.text)) return this.sequence(indent);
    if (KEY.test(line.text)) return this.mapping(indent);
    throw OUTSIDE;
  }

  private sequence(indent: number): Json[] {
    const items: Json[] = [];
    for (let line = this.lines[this.pos]; line !== undefined && line.indent === indent && isItem(line.text); line = this.lines[this.pos]) {
      let at = 1;
      while (line.text.charCodeAt(at) === 32) at++;
      const rest = line.text.slice(at);
      if (rest === '' || rest.startsWith('#')) {
        this.pos++;
        items.push(this.nestedOrNull(indent, false));
      } else if (KEY.test(rest)) {
        // `- key: value`: a mapping whose first line starts after the dash; its next keys line up with it.
        this.lines[this.pos] = { indent: indent + at, text: rest };
        items.push(this.mapping(indent + at));
      } else {
        this.pos++;
        items.push(this.scalar(rest));
        this.noContinuation(indent);
      }
    }
    return items;
  }

  private mapping(indent: number): { [k: string]: Json } {
    const map: { [k: string]: Json } = {};
    for (let line = this.lines[this.pos]; line !== undefined && line.indent === indent && !isItem(line.text); line = this.lines[this.pos]) {
      const m = KEY.exec(line.text);
      if (m === null) throw OUTSIDE;
      const key = this.key(m[1] as string);
      if (Object.hasOwn(map, key)) throw OUTSIDE;
      const rest = line.text.slice(m[0].length);
      this.pos++;
      if (rest === '' || rest.startsWith('#')) map[key] = this.nestedOrNull(indent, true);
      else {
        map[key] = this.scalar(rest);
        this.noContinuation(indent);
      }
    }
    return map;
  }

  /** What follows a `key:` or `-` with nothing after it: a deeper block, a list at the key's own indent, or null. */
  private nestedOrNull(indent: number, underKey: boolean): Json {
    const next = this.lines[this.pos];
    if (next === undefined || next.indent < indent) return null;
    if (next.indent > indent) return this.block(next.indent);
    // `key:` then `- item` at the same indent is a list under the key (YAML allows it for mappings only).
    return underKey && isItem(next.text) ? this.sequence(indent) : null;
  }

  /** A scalar on one line ended the value; a deeper line after it would continue a multi-line scalar. */
  private noContinuation(indent: number) {
    const next = this.lines[this.pos];
    if (next !== undefined && next.indent > indent) throw OUTSIDE;
  }

  private key(text: string): string {
    // A key is resolved like any scalar: `200:` is the number 200, `true:` a boolean, `null:` null.
    if (text.length > 1000 || text === '__proto__' || typeof resolvePlain(text) !== 'string') throw OUTSIDE;
    return text;
  }

  /** One scalar written on the rest of a line, comment allowed after it. */
  private scalar(rest: string): Json {
    const first = rest.charAt(0);
    if (first === '"' || first === "'") {
      const end = first === '"' ? rest.indexOf('"', 1) : singleQuoteEnd(rest);
      if (end < 0) throw OUTSIDE;
      const body = rest.slice(1, end);
      // Escapes (and in single quotes, the doubled quote) are the full parser's.
      if (first === '"' ? body.includes('\\') : body.includes("''")) throw OUTSIDE;
      if (!/^( +#.*| *)$/.test(rest.slice(end + 1))) throw OUTSIDE;
      return this.intern(body);
    }
    if (first === '[' || first === '{') {
      const m = /^(\[ *\]|\{ *\})( +#.*| *)$/.exec(rest);
      if (m === null) throw OUTSIDE;
      return first === '[' ? [] : {};
    }
    // Indicators that may not start a plain scalar, or start something else (`- `, `? `, `: `).
    if (/^[\]},#&*!|>%@`]/.test(rest) || /^[-?:]( |$)/.test(rest)) throw OUTSIDE;
    const hash = rest.indexOf(' #');
    const plain = (hash < 0 ? rest : rest.slice(0, hash)).trimEnd();
    if (plain.includes(': ') || plain.endsWith(':')) throw OUTSIDE;
    const value = resolvePlain(plain);
    return typeof value === 'string' ? this.intern(value) : value;
  }

  private intern(text: string): string {
    // A long substring keeps the whole file's text alive in V8 (a sliced string); a copy lets it go.
    const s = text.length >= 13 ? ` ${text}`.slice(1) : text;
    if (s.length > 64) return s;
    const known = this.interned.get(s);
    if (known !== undefined) return known;
    this.interned.set(s, s);
    return s;
  }
}

function isItem(text: string): boolean {
  return text.charCodeAt(0) === 45 /* - */ && (text.length === 1 || text.charCodeAt(1) === 32);
}

/** Where a single-quoted scalar ends (`''` is a quote inside it); -1 when not on this line. */
function singleQuoteEnd(rest: string): number {
  for (let i = 1; i < rest.length; i++) {
    if (rest.charAt(i) !== "'") continue;
    if (rest.charAt(i + 1) === "'") i++;
    else return i;
  }
  return -1;
}

/** A plain scalar as YAML 1.2's core schema reads it, in the `yaml` package's order and conversions. */
export function resolvePlain(s: string): Json {
  if (/^(?:~|[Nn]ull|NULL)?$/.test(s)) return null;
  if (/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s)) return s[0] === 't' || s[0] === 'T';
  if (/^0o[0-7]+$/.test(s)) return Number.parseInt(s.slice(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return Number.parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return Number.parseInt(s.slice(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s))
    return s.slice(-3).toLowerCase() === 'nan' ? Number.NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s)) return Number.parseFloat(s);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return Number.parseFloat(s);
  return s;
}
