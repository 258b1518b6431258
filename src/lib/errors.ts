/** Stable error codes: callers and the HTTP layer branch on these, never on messages. */
export type ErrorCode =
  | 'VIGIL_ERR_CONFIG'
  | 'VIGIL_ERR_RESTART_REQUIRED'
  | 'VIGIL_ERR_NOT_FOUND'
  | 'VIGIL_ERR_BAD_REQUEST'
  | 'VIGIL_ERR_CONFLICT'
  | 'VIGIL_ERR_UNAVAILABLE'
  | 'VIGIL_ERR_STORE'
  | 'VIGIL_ERR_UNAUTHORIZED'
  | 'VIGIL_ERR_FORBIDDEN';

/** An error with a stable code and an optional cause. */
export class VigilError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VigilError';
    this.code = code;
  }
}

/** The message of anything thrown: its `message` when it has a text one (an Error), else the value as text. */
export function messageOf(err: unknown): string {
  const message: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'message') : undefined;
  return typeof message === 'string' ? message : String(err);
}

/** The `code` of anything thrown (Node's and drivers' errors carry one), or '' when it has none. */
export function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err && err.code != null ? String(err.code) : '';
}
