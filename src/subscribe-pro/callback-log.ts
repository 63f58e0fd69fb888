import { coerceError } from "../errors.js";
import { maskSensitive, type Logger } from "../logger.js";
import { appendCallbacks, type CallbackLogEntry } from "../store/callback-log.js";
import type { Tx } from "../store/handle.js";
import { timeSortedId } from "../store/ids.js";

/** A callback as the HTTP layer saw it answered (src/http/app.ts, when the answer is sent). */
export interface ObservedCallback {
  receivedAt: number;
  requestId: string;
  /** Whether the request passed Sp-Hmac / the allowlist. */
  authenticated: boolean;
  status: number;
  /** The raw request body, when it was read. */
  rawBody: Buffer | undefined;
  /** The answer's JSON (text or parsed), when it had one. */
  answer: unknown;
  replayed: boolean;
  durationMs: number;
  clientAddress: string | undefined;
}

export interface CallbackLog {
  /** Queues a callback for the log (written in batches, never on the answer's path). */
  record(c: ObservedCallback): void;
  /** Writes what is queued now (tests; the service's close). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const MASK = "[masked]";
const MAX_DEPTH = 32;
/** The longest body kept: a larger one is kept as its first part, said so. */
const MAX_BODY_CHARS = 64 * 1024;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The value with every sensitive key's value masked (payment data, tokens, card numbers), at any depth; the email too when asked. */
export function maskBody(value: unknown, o: { email: boolean }): unknown {
  // A hostile body may nest 100 000 levels (refused with 400, but logged): kept to a readable depth.
  return maskSensitive(value, { replacement: MASK, maxDepth: MAX_DEPTH, email: o.email });
}

/** The log entry of an observed callback. Pure. */
export function callbackEntry(c: ObservedCallback, o: { redactEmail: boolean; id: string }): CallbackLogEntry {
  let request: Obj | undefined;
  if (c.authenticated && c.rawBody !== undefined) {
    try {
      const parsed = JSON.parse(c.rawBody.toString("utf8")) as unknown;
      if (isObj(parsed)) request = parsed;
    } catch {
      request = undefined;
    }
  }
  let answer: Obj | undefined;
  if (typeof c.answer === "string") {
    try {
      const parsed = JSON.parse(c.answer) as unknown;
      if (isObj(parsed)) answer = parsed;
    } catch {
      answer = undefined;
    }
  } else if (isObj(c.answer)) answer = c.answer;

  const text = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v.slice(0, 512) : null);
  const errorItems = Array.isArray(answer?.["errorItems"])
    ? (answer["errorItems"] as unknown[]).filter(isObj).map((i) => ({
        ...(typeof i["subscriptionId"] === "string" ? { subscriptionId: i["subscriptionId"] } : {}),
        ...(typeof i["errorMessage"] === "string" ? { message: i["errorMessage"].slice(0, 512) } : {}),
      }))
    : [];
  const errorMessage = text(answer?.["errorMessage"]);
  const errors = Array.isArray(answer?.["errors"])
    ? (answer["errors"] as unknown[])
        .filter(isObj)
        .slice(0, 50)
        .map((e) => ({ pointer: String(e["pointer"] ?? "").slice(0, 256), message: String(e["message"] ?? "").slice(0, 512) }))
    : [];
  const reasons =
    errorMessage === null && errorItems.length === 0 && errors.length === 0
      ? null
      : { ...(errorMessage === null ? {} : { errorMessage }), ...(errorItems.length === 0 ? {} : { errorItems }), ...(errors.length === 0 ? {} : { errors }) };
  let body: string | null = null;
  if (request !== undefined) {
    const masked = JSON.stringify(maskBody(request, { email: o.redactEmail }));
    body = masked.length <= MAX_BODY_CHARS ? masked : JSON.stringify({ truncated: true, firstPart: masked.slice(0, MAX_BODY_CHARS) });
  }
  const email = text(request?.["customerEmail"]);
  return {
    id: o.id,
    receivedAt: c.receivedAt,
    requestId: c.requestId,
    authenticated: c.authenticated,
    salesOrderToken: text(request?.["salesOrderToken"]),
    customerEmail: o.redactEmail ? null : email,
    status: c.status,
    orderNumber: text(answer?.["orderNumber"]),
    errorCode: text(answer?.["errorCode"]),
    reasons,
    replayed: c.replayed,
    durationMs: Math.round(c.durationMs * 1000) / 1000,
    clientAddress: c.clientAddress === undefined ? null : c.clientAddress.slice(0, 64),
    body,
    bodyBytes: c.rawBody?.length ?? 0,
  };
}

/** A log entry's id: `cb_`, the time it was received (base 36, so ids sort by time) and 12 random hex digits. */
export const entryId = (receivedAt: number): string => timeSortedId("cb", receivedAt);

/**
 * The callback log's writer: entries are queued and written in one transaction every `flushMs`
 * (or sooner when `batch` are queued), so the answer never waits for the log and a burst costs a
 * few transactions. At most `maxQueued` wait; beyond that, and when a write fails, entries are
 * dropped and counted (`onDropped`) — the log is for looking, the order's record is elsewhere.
 * Refused (unauthenticated) callbacks wait apart, the newest `sampleSize` only — the store keeps no
 * more of them either — and are written with the next batch or at the next tick of `flushMs`: a
 * flood of them neither takes the authenticated callbacks' places in the queue nor costs a write
 * per `batch` of its own.
 */
export function createCallbackLog(o: {
  db: Tx;
  log: Logger;
  redactEmail: boolean;
  /** How many refused (unauthenticated) callbacks are kept: the newest. */
  sampleSize?: number;
  flushMs?: number;
  batch?: number;
  maxQueued?: number;
  onDropped?: (n: number) => void;
}): CallbackLog {
  const flushMs = o.flushMs ?? 200;
  const batch = o.batch ?? 200;
  const maxQueued = o.maxQueued ?? 10_000;
  const sampleSize = o.sampleSize ?? 200;
  let queue: CallbackLogEntry[] = [];
  // The refused sample waiting: the newest sampleSize (older ones would be trimmed by the store).
  let refused: CallbackLogEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  let closed = false;

  const write = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const entries = refused.length === 0 ? queue : queue.concat(refused);
    queue = [];
    refused = [];
    if (entries.length === 0) return writing;
    writing = writing.then(async () => {
      try {
        await appendCallbacks(o.db, entries, { sampleSize });
      } catch (e) {
        o.onDropped?.(entries.length);
        o.log.warn("could not write the callback log; these entries are lost (the callbacks themselves are not)", { entries: entries.length, error: coerceError(e).message });
      }
    });
    return writing;
  };

  return {
    record(c) {
      if (closed) return;
      if (c.authenticated && queue.length >= maxQueued) {
        o.onDropped?.(1);
        return;
      }
      try {
        const entry = callbackEntry(c, { redactEmail: o.redactEmail, id: entryId(c.receivedAt) });
        if (c.authenticated) queue.push(entry);
        else {
          refused.push(entry);
          // Sampled out, not lost: the store keeps only the newest sampleSize refused ones.
          if (refused.length > sampleSize) refused.shift();
        }
      } catch (e) {
        // The log must never cost an answer: what cannot be logged is counted and said.
        o.onDropped?.(1);
        o.log.warn("could not log a callback", { requestId: c.requestId, error: coerceError(e).message });
        return;
      }
      if (queue.length >= batch) void write();
      else if (timer === undefined) {
        timer = setTimeout(() => void write(), flushMs);
        timer.unref();
      }
    },
    flush: () => write(),
    async close() {
      closed = true;
      await write();
    },
  };
}
