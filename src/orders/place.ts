import type { Kysely } from "kysely";
import { PlatformError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Database } from "../store/schema.js";
import type { NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "./types.js";

/**
 * Places an order through a platform within a deadline, shared by every source's pipeline. At the
 * deadline the call is aborted and a retryable PlatformError thrown; an answer that does not report
 * every line is a platform fault, never an order.
 */
export async function placeWithDeadline(
  platform: PlatformAdapter,
  order: NormalizedOrder,
  o: {
    idempotencyKey: string;
    deadlineMs: number;
    log: Logger;
    atomically?: (tx: Kysely<Database>, r: PlatformOrderResult) => Promise<void>;
    /** Aborts the call early too (shutdown). */
    signal?: AbortSignal;
  },
): Promise<PlatformOrderResult> {
  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort();
  o.signal?.addEventListener("abort", onOuterAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new PlatformError(`the ${platform.name} platform did not answer within ${o.deadlineMs} ms`, true));
    }, o.deadlineMs);
  });
  try {
    const result = await Promise.race([
      platform.createOrder(order, {
        idempotencyKey: o.idempotencyKey,
        signal: controller.signal,
        log: o.log,
        ...(o.atomically === undefined ? {} : { atomically: o.atomically }),
      }),
      deadline,
    ]);
    checkResult(order, result);
    return result;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onOuterAbort);
  }
}

/** An adapter must report every line it was sent; anything else is a platform fault, not an order. */
function checkResult(order: NormalizedOrder, result: PlatformOrderResult): void {
  const refs = new Set(result.lines.map((l) => l.ref));
  const missing = order.lines.filter((l) => !refs.has(l.ref));
  if (missing.length > 0) {
    throw new PlatformError(`the platform reported no result for ${missing.length} line(s)`, false);
  }
}
