import { AppError, PlatformError } from "../errors.js";
import type { Logger } from "../logger.js";
import { scrubber, sensitiveValues } from "../security/scrub.js";
import type { NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "./types.js";

/**
 * Places an order through a platform outside our database within a deadline (the remote placement,
 * src/orders/placement.ts, for every source). At the
 * deadline the call is aborted and a retryable PlatformError thrown; an answer that does not report
 * every line is a platform fault, never an order. Whatever a platform outside our database says
 * (an error, a line's reason) has the order's sensitive values scrubbed before it goes on.
 */
export async function placeWithDeadline(
  platform: PlatformAdapter,
  order: NormalizedOrder,
  o: {
    idempotencyKey: string;
    deadlineMs: number;
    log: Logger;
    /** Aborts the call early too (shutdown). */
    signal?: AbortSignal;
    /** Scrub the customer's email from the platform's words too (LOG_REDACT_EMAIL). */
    redactEmail?: boolean;
  },
): Promise<PlatformOrderResult> {
  const scrub = scrubber(sensitiveValues(order, { email: o.redactEmail === true }));
  let result: PlatformOrderResult;
  try {
    result = await withDeadline(platform.name, o.deadlineMs, o.signal, (signal) => platform.createOrder(order, { idempotencyKey: o.idempotencyKey, signal, log: o.log, scrub }));
  } catch (e) {
    // Scrubbed again whoever made it (a module may build its own PlatformError), and without
    // its cause, whose message nobody scrubbed.
    if (e instanceof PlatformError) {
      throw new PlatformError(scrub(e.message), e.retryable, { notPlaced: e.notPlaced, detail: e.detail === undefined ? undefined : scrub(e.detail) });
    }
    if (e instanceof AppError) throw e;
    // An adapter outside our database (a module, a remote system) failing in its own way (a
    // fetch that failed, a bug) is a platform fault the sender should retry: 503, not 500. Its
    // message may quote what the platform said: log-only, scrubbed.
    const what = e instanceof Error ? e.message : String(e);
    throw new PlatformError(`the ${platform.name} platform failed (its adapter threw ${e instanceof Error ? e.name : "a non-Error"}); the order may have been placed`, true, {
      detail: scrub.excerpt(what, 500),
    });
  }
  checkResult(order, result);
  if (result.lines.every((l) => l.ok)) return result;
  // A line's reason is answered (Subscribe Pro's errorItems) and stored: the platform's words, scrubbed.
  return { ...result, lines: result.lines.map((l) => (l.ok ? l : { ...l, message: scrub(l.message) })) };
}

/**
 * Runs `call` with a signal aborted at the deadline (or when `outer` aborts), and gives up at the
 * deadline with a retryable PlatformError. Errors of `call` pass unchanged.
 */
export async function withDeadline<T>(platformName: string, deadlineMs: number, outer: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort();
  outer?.addEventListener("abort", onOuterAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new PlatformError(`the ${platformName} platform did not answer within ${deadlineMs} ms`, true));
    }, deadlineMs);
  });
  try {
    return await Promise.race([call(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onOuterAbort);
  }
}

/**
 * An adapter must report every line it was sent, once, and nothing else, and its order and lines
 * must agree; anything else is a platform fault (503), never an order answered with a made-up
 * reason or an order left out of the answer.
 */
export function checkResult(order: NormalizedOrder, result: PlatformOrderResult): void {
  const fault = (what: string): PlatformError => new PlatformError(`the platform's answer is inconsistent: ${what}`, false);
  const sent = new Set(order.lines.map((l) => l.ref));
  const seen = new Set<string>();
  for (const l of result.lines) {
    if (!sent.has(l.ref)) throw fault(`it reported line ${JSON.stringify(l.ref)}, which was not sent`);
    if (seen.has(l.ref)) throw fault(`it reported line ${JSON.stringify(l.ref)} more than once`);
    seen.add(l.ref);
  }
  const missing = order.lines.filter((l) => !seen.has(l.ref));
  if (missing.length > 0) {
    throw new PlatformError(`the platform reported no result for ${missing.length} line(s)`, false);
  }
  const ordered = result.lines.filter((l) => l.ok).length;
  if (result.order !== null && ordered === 0) throw fault("it returned an order but reported every line failed");
  if (result.order === null && ordered === result.lines.length) throw fault("it reported every line ordered but returned no order");
}
