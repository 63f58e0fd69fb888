/**
 * The closed set of errors orderbridge raises on purpose. Each carries a stable `code` and the HTTP
 * status it maps to; the mapping to a response happens in one place (`src/http/error-handler.ts`).
 * Anything that is not an AppError becomes a 500 with a generic message (details go to the log only).
 */
export interface InvalidField {
  /** JSON pointer (RFC 6901) of the offending value in the request body, "" for the whole body. */
  pointer: string;
  message: string;
}

export abstract class AppError extends Error {
  abstract readonly code: string;
  abstract readonly httpStatus: number;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  readonly retryAfterSeconds: number | undefined = undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Configuration is missing or invalid: the process refuses to start. */
export class ConfigError extends AppError {
  readonly code = "config_invalid";
  readonly httpStatus = 500;
}

/** Missing or wrong signature. */
export class SignatureError extends AppError {
  readonly code: string;
  readonly httpStatus = 401;
  constructor(code: "signature_missing" | "signature_mismatch" | "signature_malformed", message: string) {
    super(message);
    this.code = code;
  }
}

/** The client address is not on the allowlist. */
export class ForbiddenAddressError extends AppError {
  readonly code = "address_not_allowed";
  readonly httpStatus = 403;
}

/** Admin API: missing or wrong bearer token. */
export class UnauthorizedError extends AppError {
  readonly code = "unauthorized";
  readonly httpStatus = 401;
}

export class NotFoundError extends AppError {
  readonly code = "not_found";
  readonly httpStatus = 404;
}

export class MethodNotAllowedError extends AppError {
  readonly code = "method_not_allowed";
  readonly httpStatus = 405;
  constructor(
    message: string,
    readonly allow: string[],
  ) {
    super(message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  readonly code = "unsupported_media_type";
  readonly httpStatus = 415;
}

export class PayloadTooLargeError extends AppError {
  readonly code = "payload_too_large";
  readonly httpStatus = 413;
}

/** The body is not JSON, or does not match the schema. */
export class PayloadError extends AppError {
  readonly code: string;
  readonly httpStatus = 400;
  constructor(
    code: "json_malformed" | "schema_violation" | "query_invalid" | "form_invalid",
    message: string,
    readonly fields: InvalidField[] = [],
  ) {
    super(message);
    this.code = code;
  }
}

/** The request conflicts with the current state of the resource (e.g. replaying a running job). */
export class ConflictError extends AppError {
  readonly code = "conflict";
  readonly httpStatus = 409;
}

/** The idempotency key was already used for a different request body. */
export class IdempotencyConflictError extends AppError {
  readonly code = "idempotency_key_reused";
  readonly httpStatus = 409;
}

/**
 * Something we depend on (the platform, the database) is down, slow or overloaded. Nothing final was
 * recorded; the client should retry later.
 */
export class ServiceUnavailableError extends AppError {
  readonly code: string;
  readonly httpStatus = 503;
  override readonly retryAfterSeconds: number;
  constructor(
    code: "platform_unavailable" | "store_unavailable" | "in_progress" | "shutting_down" | "metrics_unavailable",
    message: string,
    options: { retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }
}

/**
 * A platform adapter could not complete the call (down, timed out, answered nonsense). When
 * `retryable` the pipeline answers 503 and records nothing final. `notPlaced`: the platform said
 * plainly that it did not place the order (it refused the request); otherwise it may have placed
 * it (a timeout, a lost or unreadable answer), and the key stays bound to the order's body.
 *
 * The message is what the caller is answered: our own words (which platform, the HTTP status, the
 * kind of failure, the platform's request id), never the platform's. What the platform said goes
 * in `detail`, for logs and the job's last error only, after its sensitive values were scrubbed
 * (src/security/scrub.ts): a remote error text may quote the payment token it was sent.
 */
export class PlatformError extends AppError {
  readonly code = "platform_error";
  readonly httpStatus = 503;
  override readonly retryAfterSeconds = 5;
  readonly notPlaced: boolean;
  /** The platform's own words (an excerpt of its answer), scrubbed; never answered. */
  readonly detail: string | undefined;
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown; notPlaced?: boolean; detail?: string | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.notPlaced = options?.notPlaced ?? false;
    this.detail = options?.detail === "" ? undefined : options?.detail;
  }
}

/**
 * A call to Recharge's API that orderbridge makes on its own account (webhook registrations, the
 * sweep's order lists) failed: no answer, or a status that is not 2xx. The message names the call
 * and status and carries Recharge's words with the access token scrubbed (never the token).
 * Example: "GET /webhooks → 401: Invalid API token".
 */
export class RechargeApiError extends AppError {
  readonly code = "recharge_api_error";
  readonly httpStatus = 502;
  constructor(
    message: string,
    /** The HTTP status, undefined when there was no answer. */
    readonly status: number | undefined,
    /** Worth trying again later (no answer, 408, 409, 429, 5xx). */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** An error's message with the platform's scrubbed words when it has them: for logs and a job's last error. */
export function errorText(e: Error): string {
  return e instanceof PlatformError && e.detail !== undefined ? `${e.message}. The platform said: ${e.detail}` : e.message;
}

/** Turns anything thrown into an Error, so callers can always read `.message`. */
export function coerceError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === "string" ? e : JSON.stringify(e));
}

/** The JSON answer for an error: the one place that turns errors into status codes and bodies. */
export interface ErrorResponse {
  status: number;
  body: {
    errorMessage: string;
    errorClass: "Technology";
    errorCode: string;
    requestId?: string;
    errors?: InvalidField[];
  };
  headers: Record<string, string>;
}

export function toErrorResponse(e: unknown, requestId?: string, isStoreUnavailable: (e: unknown) => boolean = () => false): ErrorResponse {
  const rid = requestId === undefined ? {} : { requestId };
  if (e instanceof AppError) {
    const headers: Record<string, string> = {};
    if (e.retryAfterSeconds !== undefined) headers["Retry-After"] = String(e.retryAfterSeconds);
    if (e instanceof MethodNotAllowedError) headers["Allow"] = e.allow.join(", ");
    const body: ErrorResponse["body"] = { errorMessage: e.message, errorClass: "Technology", errorCode: e.code, ...rid };
    if (e instanceof PayloadError && e.fields.length > 0) body.errors = e.fields;
    return { status: e.httpStatus, body, headers };
  }
  if (isStoreUnavailable(e)) {
    return {
      status: 503,
      body: { errorMessage: "The database is unavailable; retry shortly.", errorClass: "Technology", errorCode: "store_unavailable", ...rid },
      headers: { "Retry-After": "5" },
    };
  }
  return {
    status: 500,
    body: {
      errorMessage: "Internal error. A retry with the same salesOrderToken is safe; if it persists, give the operator the requestId.",
      errorClass: "Technology",
      errorCode: "internal",
      ...rid,
    },
    headers: {},
  };
}
