import { type DestinationStream, type Logger, pino } from 'pino';
import { noRedaction, type Redactor } from './redactor.js';

export type { Logger } from 'pino';

/** Paths pino censors in every log line, whatever module logs them. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.Authorization',
  'headers.cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.routingKey',
  '*.webhookUrl',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; stdout by default. Tests pass a stream to read what was logged. */
  destination?: DestinationStream;
}

// user@host.tld inside a JSON string: the local part never contains a quote or backslash here.
const EMAIL = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)/g;

/** `alice@example.com` → `a***@example.com`: who and which domain still show, the address does not. */
export function maskEmails(line: string): string {
  return line.includes('@') ? line.replace(EMAIL, '$1***@$2') : line;
}

// A one-click link's path in any spelling (`/act/`, `%2Fact%2F`): the token after it is a credential.
const LINK_TOKEN = /(\/|%2f)act(\/|%2f)[^"\\\s?#]*/gi;

// A push probe's URL in any spelling: the path segment after `push/` is the job's credential.
const PUSH_TOKEN = /((?:\/|%2f)push(?:\/|%2f))[^"\\\s?#/%]+/gi;

/** `/act/<anything>` → `/act/<token>`, `/push/<token>` likewise, on a finished line: the backstop behind the request log's own hiding. */
export function hideLinkTokens(line: string): string {
  const out = line.includes('act') ? line.replace(LINK_TOKEN, '$1act$2<token>') : line;
  return out.includes('push') ? out.replace(PUSH_TOKEN, '$1<token>') : out;
}

/**
 * The line with secrets, addresses and link tokens hidden, and still one JSON object: a line the text
 * passes would break (a piece of a secret cut at an escape) is hidden value by value instead, which
 * costs a parse and only for a line that had something to hide.
 */
export function cleanLine(line: string, redactor: Redactor): string {
  const out = hideLinkTokens(maskEmails(redactor.text(line)));
  if (out === line || isJson(out)) return out;
  const end = line.endsWith('\n') ? '\n' : '';
  // Neither of the other two passes crosses a string's quotes.
  return hideLinkTokens(maskEmails(JSON.stringify(redactor.value(JSON.parse(line))))) + end;
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Where a logger keeps the redactor its lines pass through; child loggers inherit it from their root. */
const SECRETS = Symbol('vigil.logger.secrets');
type WithSecrets = Logger & { [SECRETS]?: { redactor: Redactor } };
const hasSecrets = (logger: Logger): logger is WithSecrets => SECRETS in logger;

/**
 * JSON logs with an ISO timestamp, a text level, secrets censored by path, known secret values
 * removed from the finished line (`setLogSecrets`) and email addresses masked.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets = { redactor: noRedaction };
  const logger: WithSecrets = pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'vigil' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '<secret>' },
      // On the finished line, so a secret or an address goes wherever it sits: a field, a message, an
      // error's stack. The last pass: whatever a module logged, a configured secret never leaves.
      hooks: { streamWrite: (line) => cleanLine(line, secrets.redactor) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
  // pino makes a child with Object.create(parent): the children see this property, and a later
  // setLogSecrets on the root reaches every line of every child at once.
  Object.defineProperty(logger, SECRETS, { value: secrets });
  return logger;
}

/**
 * Removes these secrets (in every form) from every line this logger and its children write from now
 * on: the composition root sets it at start and again when a reload brings new secrets. False for
 * a logger not made by createLogger.
 */
export function setLogSecrets(logger: Logger, redactor: Redactor): boolean {
  // A child logger inherits the holder from its parent's prototype, so `in` (not hasOwn) finds it.
  const holder = hasSecrets(logger) ? logger[SECRETS] : undefined;
  if (holder === undefined) return false;
  holder.redactor = redactor;
  return true;
}
