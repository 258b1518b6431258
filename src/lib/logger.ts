import { type DestinationStream, type Logger, pino } from 'pino';

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
const LINK_TOKEN = /(\/|%2f)act(\/|%2f)[^"\s?#]*/gi;

/** `/act/<anything>` → `/act/<token>` on a finished line: the backstop behind the request log's own hiding. */
export function hideLinkTokens(line: string): string {
  return line.includes('act') ? line.replace(LINK_TOKEN, '$1act$2<token>') : line;
}

/** JSON logs with an ISO timestamp, a text level, secrets censored by path and email addresses masked. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'vigil' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '<secret>' },
      // On the finished line, so an address is masked wherever it sits: a field, a message, an error.
      hooks: { streamWrite: (line) => hideLinkTokens(maskEmails(line)) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
