/**
 * Coded errors. Every failure Custody reports carries a stable `code` that
 * scripts, tests and the HTTP API can rely on; messages may change, codes may not.
 *
 * The category decides the CLI exit code and the HTTP status, so a new code only
 * has to pick the category that describes who must act: the caller (input),
 * a policy (denied), a human (pending), the data already there (conflict) or us.
 */

export type ErrorCategory =
  | 'denied' // a decision said no, or verification failed
  | 'input' // bad usage or bad input
  | 'not-found' // a named thing does not exist (still the caller's input)
  | 'pending' // waiting for someone (approval)
  | 'conflict' // contradicts what is already recorded
  | 'unauthenticated'
  | 'forbidden'
  | 'unavailable' // a dependency is down or overloaded; retrying may help
  | 'too-large' // the caller sent more bytes than a limit allows (HTTP 413)
  | 'throttled' // the caller sent too many requests; retry after a pause (HTTP 429)
  | 'internal';

const CATEGORY_EXIT: Record<ErrorCategory, number> = {
  denied: 1,
  input: 2,
  'not-found': 2,
  pending: 3,
  conflict: 4,
  unauthenticated: 2,
  forbidden: 2,
  unavailable: 5,
  'too-large': 2,
  throttled: 5,
  internal: 5,
};

const CATEGORY_HTTP: Record<ErrorCategory, number> = {
  denied: 422,
  input: 400,
  'not-found': 404,
  pending: 202,
  conflict: 409,
  unauthenticated: 401,
  forbidden: 403,
  unavailable: 503,
  'too-large': 413,
  throttled: 429,
  internal: 500,
};

/** Every code Custody may emit, with its category. Add new codes here only. */
export const ERROR_CODES = {
  // generic input
  USAGE: 'input',
  INPUT_INVALID: 'input',
  INPUT_NOT_FOUND: 'not-found',
  INPUT_TOO_LARGE: 'too-large',
  INPUT_UNREADABLE: 'input',
  CONFIG_INVALID: 'input',
  WORKSPACE_NOT_FOUND: 'not-found',
  WORKSPACE_EXISTS: 'conflict',
  // artifacts
  ARTIFACT_CONFLICT: 'conflict',
  ARTIFACT_NOT_FOUND: 'not-found',
  DIGEST_INVALID: 'input',
  DIGEST_MISMATCH: 'denied',
  NAME_INVALID: 'input',
  VERSION_INVALID: 'input',
  // identities and roles
  IDENTITY_INVALID: 'input',
  ROLE_REQUIRED: 'forbidden',
  // keys
  KEK_MISSING: 'input',
  KEK_INVALID: 'input',
  KEY_NOT_FOUND: 'not-found',
  KEY_EXISTS: 'conflict',
  KEY_INVALID: 'input',
  KEY_WEAK: 'input',
  KEY_ALGORITHM_UNSUPPORTED: 'input',
  KEY_DECRYPT_FAILED: 'input',
  KEY_ID_MISMATCH: 'input',
  KEY_NOT_USABLE: 'denied',
  KEY_STATE_INVALID: 'conflict',
  HSM_ERROR: 'input',
  // evidence and verification
  EVIDENCE_INVALID: 'input',
  EVIDENCE_NOT_FOUND: 'not-found',
  PREDICATE_INVALID: 'input',
  TRUSTED_ROOT_INVALID: 'input',
  VERIFY_FAILED: 'denied',
  // log
  LOG_TAMPERED: 'denied',
  LOG_ENTRY_NOT_FOUND: 'not-found',
  CHECKPOINT_INVALID: 'denied',
  CHECKPOINT_NOT_FOUND: 'not-found',
  WITNESS_REFUSED: 'denied',
  // policy
  POLICY_INVALID: 'input',
  POLICY_TEST_FAILED: 'denied',
  POLICY_UNSIGNED: 'denied',
  POLICY_NOT_FOUND: 'not-found',
  ENVIRONMENT_NOT_FOUND: 'not-found',
  EXCEPTION_INVALID: 'input',
  EXCEPTION_NOT_FOUND: 'not-found',
  EXCEPTION_REFUSED: 'forbidden',
  POLICY_SIGNATURE_INVALID: 'denied',
  // promotion
  PROMOTION_REJECTED: 'denied',
  PROMOTION_PENDING: 'pending',
  PROMOTION_NOT_FOUND: 'not-found',
  PROMOTION_TRANSITION_INVALID: 'conflict',
  PROMOTION_SUPERSEDED: 'conflict',
  PROMOTION_FAILED: 'internal',
  APPROVAL_REFUSED: 'forbidden',
  TARGET_FAILED: 'internal',
  ROLLBACK_REFUSED: 'denied',
  RECEIPT_INVALID: 'denied',
  IDEMPOTENCY_CONFLICT: 'conflict',
  PROMOTION_QUEUE_TIMEOUT: 'unavailable',
  // server and auth
  AUTH_REQUIRED: 'unauthenticated',
  AUTH_INVALID: 'unauthenticated',
  FORBIDDEN: 'forbidden',
  RATE_LIMITED: 'throttled',
  TOKEN_NOT_FOUND: 'not-found',
  SERVER_UNREACHABLE: 'unavailable',
  SERVER_RESPONSE_INVALID: 'internal',
  SHUTTING_DOWN: 'unavailable',
  REQUEST_TIMEOUT: 'unavailable',
  ROUTE_NOT_FOUND: 'not-found',
  JWKS_UNAVAILABLE: 'unavailable',
  NOT_READY: 'unavailable',
  // storage and everything else
  STORE_BUSY: 'unavailable',
  STORE_ERROR: 'internal',
  INTERRUPTED: 'internal',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface CustodyErrorOptions {
  cause?: unknown;
  /** One line telling the user what to do next. */
  hint?: string;
  /** Structured, non-secret context (a field name, an index, a digest). */
  details?: Record<string, unknown>;
}

export class CustodyError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: CustodyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CustodyError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code];
  }

  get exitCode(): number {
    return CATEGORY_EXIT[this.category];
  }

  get httpStatus(): number {
    return CATEGORY_HTTP[this.category];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isCustodyError(e: unknown): e is CustodyError {
  return e instanceof CustodyError;
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

export function exitCodeFor(code: ErrorCode): number {
  return CATEGORY_EXIT[ERROR_CODES[code]];
}

export function httpStatusFor(code: ErrorCode): number {
  return CATEGORY_HTTP[ERROR_CODES[code]];
}

/** Wraps anything thrown by a dependency so nothing uncoded escapes a boundary. */
export function toCustodyError(e: unknown, fallback: ErrorCode = 'INTERNAL'): CustodyError {
  if (e instanceof CustodyError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new CustodyError(fallback, message, { cause: e });
}

/**
 * True when a store refused a write that would duplicate a unique key (both
 * stores report it as STORE_ERROR with `details.violation = 'unique'` and the
 * table and columns). Use cases catch it and throw their own code, e.g. KEY_EXISTS.
 */
export function isUniqueViolation(e: unknown, table?: string): e is CustodyError {
  return (
    e instanceof CustodyError &&
    e.code === 'STORE_ERROR' &&
    e.details?.['violation'] === 'unique' &&
    (table === undefined || e.details['table'] === table)
  );
}

/** Result shape shared by every verifier: never throws, always says why. */
export interface Reason {
  code: string;
  message: string;
}

export interface VerificationResult<T = undefined> {
  ok: boolean;
  reasons: Reason[];
  value?: T;
}
