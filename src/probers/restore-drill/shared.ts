import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FailureCode } from '../types.js';

/** The value a check expects in the first column of the first row. */
export type Expected = string | number | boolean | null;

/** A verification check, resolved: file checks already read, table checks turned into a count. */
export type Check =
  | { kind: 'table'; name: string; table: string; minRows: number; maxRows?: number }
  | { kind: 'query'; name: string; sql: string; expect: Expected };

/** What one check found, kept with the run as evidence. */
export interface CheckOutcome {
  name: string;
  ok: boolean;
  expected: string;
  /** What the query answered (text), `NULL`, `no rows`, or the error. */
  got: string;
}

/** What a backend's restore and verification produced. */
export interface DrillOutcome {
  /** Time to make the backup usable (createdb + restore, or the SQLite copy), when it got that far. */
  restoreMs?: number;
  verifyMs?: number;
  rowsChecked: number;
  checks: CheckOutcome[];
  failure?: { code: FailureCode; step: string; message: string };
  details: Record<string, unknown>;
}

/** The first column of the first row, as text; `null` for SQL NULL; `undefined` when no row came back. */
export type FirstValue = string | null | undefined;

/** Compares a check's answer with what it expects: numbers as numbers, booleans in either spelling. */
export function matches(expect: Expected, got: FirstValue): boolean {
  if (got === undefined) return false;
  if (expect === null || got === null) return expect === got;
  if (typeof expect === 'number') return got.trim() !== '' && Number(got) === expect;
  if (typeof expect === 'boolean') return (expect ? ['t', 'true', '1'] : ['f', 'false', '0']).includes(got.trim().toLowerCase());
  return got === expect;
}

/** Judges one check's answer. `rows` comes back for table checks so the run can report rows_checked. */
export function judge(check: Check, got: FirstValue, error?: string): CheckOutcome & { rows?: number } {
  if (check.kind === 'table') {
    const expected = check.maxRows === undefined ? `at least ${rowsText(check.minRows)}` : `${check.minRows}-${check.maxRows} rows`;
    if (error !== undefined) return { name: check.name, ok: false, expected, got: error };
    const rows = Number(got);
    const ok = Number.isFinite(rows) && rows >= check.minRows && (check.maxRows === undefined || rows <= check.maxRows);
    return {
      name: check.name,
      ok,
      expected,
      got: Number.isFinite(rows) ? rowsText(rows) : 'no count',
      rows: Number.isFinite(rows) ? rows : undefined,
    };
  }
  const expected = check.expect === null ? 'NULL' : String(check.expect);
  if (error !== undefined) return { name: check.name, ok: false, expected, got: error };
  const shown = got === undefined ? 'no rows' : got === null ? 'NULL' : got;
  return { name: check.name, ok: matches(check.expect, got), expected, got: shown };
}

function rowsText(n: number): string {
  return n === 1 ? '1 row' : `${n} rows`;
}

/** Quotes a possibly schema-qualified table name (`public.users`) as identifiers. */
export function quoteTable(table: string): string {
  return table
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.');
}

/** The failure message of a verification: every failing check, bounded. */
export function verifyMessage(file: string, checks: CheckOutcome[]): string {
  const failed = checks.filter((c) => !c.ok);
  const shown = failed.slice(0, 3).map((c) => `${c.name}: expected ${c.expected}, got ${clip(c.got, 200)}`);
  const more = failed.length > 3 ? `; and ${failed.length - 3} more` : '';
  return `verify: ${failed.length} of ${checks.length} checks failed on ${file}: ${shown.join('; ')}${more}`;
}

/** Strips secrets from tool output: URL passwords, `password=` settings and the known secret values. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:***@').replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  for (const s of secrets) if (s.length > 0) out = out.replaceAll(s, '***');
  return out;
}

/** The end of a tool's stderr on one line, at most `max` characters, secrets removed. */
export function stderrTail(text: string, secrets: readonly string[], max = 500): string {
  const oneLine = redact(text, secrets)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' | ');
  return oneLine.length > max ? `…${oneLine.slice(-(max - 1))}` : oneLine;
}

export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** How a child process ended. */
export interface ToolResult {
  /** Exit code; null when killed by a signal or not started. */
  code: number | null;
  stdout: string;
  /** The last 16 KiB of stderr. */
  stderr: string;
  /** The run's deadline passed (or vigil is shutting down) and the process was killed. */
  aborted: boolean;
  /** The binary could not be started (not installed, not executable). */
  spawnError?: NodeJS.ErrnoException;
  /** Reading or transforming `input` (the streams piped into stdin) failed, e.g. a truncated gzip. */
  inputError?: Error;
}

const STDERR_KEEP = 16 * 1024;
const KILL_GRACE_MS = 2_000;
/** How a pipe ends when the tool stops reading early (psql at its first error): not an input failure. */
const PIPE_CLOSED = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * Runs a tool as a child in its own process group, killed whole (pg_restore -j forks workers)
 * when `signal` aborts: SIGTERM, then SIGKILL after a grace. Never rejects.
 */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: { env: NodeJS.ProcessEnv; signal: AbortSignal; input?: [Readable, ...Writable[]]; maxStdout?: number },
): Promise<ToolResult> {
  const maxStdout = opts.maxStdout ?? 64 * 1024;
  return new Promise((resolve) => {
    const destroyInput = () => {
      for (const s of opts.input ?? []) s.destroy();
    };
    if (opts.signal.aborted) {
      destroyInput();
      resolve({ code: null, stdout: '', stderr: '', aborted: true });
      return;
    }
    const child = spawn(cmd, [...args], {
      env: opts.env,
      stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let aborted = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let inputError: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const onAbort = () => {
      aborted = true;
      destroyInput();
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < maxStdout) stdout += chunk.slice(0, maxStdout - stdout.length);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    if (child.stdin) {
      // A tool that stops reading early (psql on the first error) breaks the pipe: not our failure.
      child.stdin.on('error', () => {});
      pipeline([...(opts.input ?? []), child.stdin]).catch((err: NodeJS.ErrnoException) => {
        if (!PIPE_CLOSED.has(err.code ?? '') && !aborted) {
          inputError = err;
          killGroup('SIGTERM');
        }
      });
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    child.on('close', (code) => {
      opts.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, stdout, stderr, aborted, spawnError, inputError });
    });
  });
}

/** Why a tool failed, in words: not found, killed at the deadline, or its exit code and stderr. */
export function toolFailure(tool: string, r: ToolResult, secrets: readonly string[]): string {
  if (r.spawnError) {
    return r.spawnError.code === 'ENOENT'
      ? `${tool} not found (install the PostgreSQL client tools or set target.binDir)`
      : `cannot start ${tool}: ${r.spawnError.message}`;
  }
  if (r.inputError) return `reading the backup failed: ${stderrTail(r.inputError.message, secrets)}`;
  const tail = stderrTail(r.stderr || r.stdout, secrets);
  return `${tool} exited ${r.code ?? 'on a signal'}${tail ? `: ${tail}` : ''}`;
}

/** The backup a drill restores: the newest match of the source glob. */
export interface Backup {
  path: string;
  bytes: number;
  mtimeMs: number;
  /** A pg_dump directory-format archive (a folder with `toc.dat`). */
  directory: boolean;
}

/** Parses the first field of psql's `--csv` output; `nullMark` is what psql prints for NULL. */
export function firstCsvField(out: string, nullMark: string): FirstValue {
  if (out === '') return undefined;
  if (out.startsWith('"')) {
    let value = '';
    let i = 1;
    while (i < out.length) {
      const q = out.indexOf('"', i);
      if (q < 0) return value + out.slice(i);
      value += out.slice(i, q);
      if (out[q + 1] === '"') {
        value += '"';
        i = q + 2;
      } else return value;
    }
    return value;
  }
  const end = out.search(/[,\n]/);
  const field = end < 0 ? out : out.slice(0, end);
  return field === nullMark ? null : field;
}
