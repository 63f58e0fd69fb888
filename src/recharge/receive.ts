import { createHash } from "node:crypto";
import { PayloadError, SignatureError } from "../errors.js";
import type { Logger } from "../logger.js";
import { verifyRechargeWebhook } from "../security/recharge-signature.js";
import type { Tx } from "../store/handle.js";
import { addInboxEvent, type NewInboxEvent } from "../store/recharge-inbox.js";
import { parseJsonBody } from "../validation/json.js";
import type { Validator } from "../validation/schemas.js";
import { WEBHOOK_TASK } from "./handlers.js";
import { HANDLED_TOPICS, RECHARGE_API_VERSIONS, detectVersion, topicFromPayload, type RechargeApiVersion } from "./order.js";

export interface RechargeReceiverDeps {
  db: Tx;
  secrets: readonly string[];
  toleranceSeconds: number;
  defaultVersion: RechargeApiVersion;
  validateOrder: Validator<{ order: Record<string, unknown> }>;
  validateCheckout: Validator<{ checkout: Record<string, unknown> }>;
  maxAttempts: number;
  clock: () => number;
  /** Called after an event was stored for processing (nudges the worker). */
  onEnqueued: () => void;
}

/** Where a delivery's topic was found: the URL, `X-Recharge-Topic`, or (neither naming one) the body. */
export type TopicSource = "path" | "header" | "payload";

export interface RechargeDelivery {
  /** Normalised topic ("order/created"), or undefined when neither the URL nor a header named one. */
  topic: string | undefined;
  /** Which of the two named `topic`. */
  topicSource: Exclude<TopicSource, "payload"> | undefined;
  rawBody: Buffer;
  headers: { legacy?: string | undefined; signature?: string | undefined; timestamp?: string | undefined; version?: string | undefined };
  requestId: string;
  log: Logger;
}

export interface RechargeAck {
  status: "accepted" | "duplicate" | "ignored";
  /** Null for an unsigned empty body, which is answered but not stored. */
  eventId: string | null;
  /** The topic it is processed or recorded as; null when none could be told. */
  topic: string | null;
  /** Where the topic was found; null when nowhere. */
  topicSource: TopicSource | null;
  reason?: string;
}

/** "order-created", "order_created", "ORDER/CREATED" → "order/created". */
export function normalizeTopic(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const t = raw
    .trim()
    .toLowerCase()
    .replace(/^\/+|\/+$/g, "");
  if (t === "") return undefined;
  if (t.includes("/")) return t;
  const m = /^([a-z]+)[-_.](.+)$/.exec(t);
  return m === null ? t : `${m[1]}/${m[2]}`;
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/**
 * An inbox event's dedupe key: Recharge sends no delivery id, so a re-delivery is recognised by
 * content. The sweep (src/recharge/sweep.ts) stores the orders it finds under the same key.
 */
export const eventDedupeKey = (topic: string, resourceId: string | null, updatedAt: unknown): string | null =>
  resourceId !== null && typeof updatedAt === "string" ? `recharge:${topic}:${resourceId}:${updatedAt}` : null;
export const eventBodyHash = (topic: string, text: string): string => sha256(`${topic}\n${text}`);

/**
 * The inbox event of a Recharge order or checkout as received (or, by the sweep, as found): its
 * topic, its body's exact text, and the keys that make a second arrival of it a duplicate.
 */
export function inboxEvent(o: {
  source: NewInboxEvent["source"];
  topic: string;
  topicSource: TopicSource | null;
  text: string;
  resourceId: string | null;
  updatedAt: unknown;
  apiVersion: string;
  correlationId: string | null;
}): NewInboxEvent {
  return {
    source: o.source,
    topic: o.topic,
    topicSource: o.topicSource,
    dedupeKey: eventDedupeKey(o.topic, o.resourceId, o.updatedAt),
    bodyHash: eventBodyHash(o.topic, o.text),
    resourceId: o.resourceId,
    apiVersion: o.apiVersion,
    body: o.text,
    correlationId: o.correlationId,
  };
}

/**
 * Records an inbox event and, unless it is a duplicate or ignored, queues its processing (the
 * webhook task's job of the same id) in the same transaction.
 */
export function storeInboxEvent(db: Tx, event: NewInboxEvent, o: { maxAttempts: number; now: number }): Promise<{ id: string; inserted: boolean }> {
  return addInboxEvent(db, event, o.now, (eventId) =>
    WEBHOOK_TASK.job({ eventId }, { maxAttempts: o.maxAttempts, resourceId: event.resourceId, correlationId: event.correlationId }),
  );
}

/**
 * Receiving a Recharge webhook: authenticate, read, and write it to the durable inbox, then answer.
 * Nothing slow happens here (no platform, no Recharge call), so the answer comes in milliseconds
 * whatever the platform does; processing runs from the inbox (src/recharge/handlers.ts).
 */
export function createRechargeReceiver(deps: RechargeReceiverDeps) {
  return async function receive(d: RechargeDelivery): Promise<RechargeAck> {
    const now = deps.clock();
    const text = d.rawBody.toString("utf8");
    const empty = text.trim() === "" || text.trim() === "{}";
    const signed = [d.headers.legacy, d.headers.signature].some((h) => h !== undefined && h.trim() !== "");

    // Recharge's test call (POST /webhooks/{id}/test) sends an empty body; whether it is signed is
    // not documented, so an unsigned empty body is answered 200 (and changes nothing).
    if (!(empty && !signed)) {
      const v = verifyRechargeWebhook(d.rawBody, d.headers, deps.secrets, {
        nowSeconds: Math.floor(now / 1000),
        toleranceSeconds: deps.toleranceSeconds,
      });
      if (!v.ok) {
        // Debug, as below: unauthenticated noise is anyone's to send (the access log has a line for
        // each request, the webhook counter counts it as refused).
        d.log.debug("Recharge webhook refused: signature", { reason: v.reason, scheme: v.scheme });
        throw new SignatureError(v.reason === "missing" ? "signature_missing" : v.reason === "malformed" ? "signature_malformed" : "signature_mismatch", v.message);
      }
    }

    // No JSON text holds a NUL byte (in a string it is written \u0000, and refused by parseJsonBody);
    // the body of an ignored topic is kept as it came, and PostgreSQL cannot keep that one.
    if (d.rawBody.includes(0)) throw new PayloadError("json_malformed", "The request body contains a NUL byte (0x00), which JSON text never does.");

    let topic = d.topic;
    let topicSource: TopicSource | null = topic === undefined ? null : (d.topicSource ?? null);
    const ignore = async (reason: string): Promise<RechargeAck> => {
      const r = await addInboxEvent(
        deps.db,
        {
          source: "webhook",
          topic: topic ?? null,
          topicSource,
          dedupeKey: null,
          bodyHash: null,
          resourceId: null,
          apiVersion: null,
          body: text.trim() === "" ? null : text,
          ignoredReason: reason,
          correlationId: d.requestId,
        },
        now,
      );
      d.log.info("Recharge webhook ignored", { topic, topicSource, reason, eventId: r.id });
      return { status: "ignored", eventId: r.id, topic: topic ?? null, topicSource, reason };
    };
    if (empty && !signed) {
      // Not stored, and logged at debug only: anyone can send it, and it asks for nothing.
      d.log.debug("Recharge webhook ignored: unsigned empty body (Recharge's test webhook)", { topic });
      return { status: "ignored", eventId: null, topic: topic ?? null, topicSource, reason: "empty body (Recharge's test webhook)" };
    }
    if (empty) return ignore("empty body (Recharge's test webhook)");
    if (topic === undefined) {
      // One URL for every topic, without X-Recharge-Topic: the body tells. A signed delivery is
      // never refused for its topic (Recharge retries a 4xx and deletes the webhook after 20
      // failures, so every order would stop): one that is no handled topic is recorded as ignored.
      // A body that is not JSON at all is refused (400) as at a handled topic's own URL.
      const inferred = topicFromPayload(parseLeniently(d.rawBody, text));
      topicSource = "payload";
      if (inferred.topic === undefined) return ignore(inferred.reason);
      topic = inferred.topic;
    }
    if (!(HANDLED_TOPICS as readonly string[]).includes(topic)) return ignore(`topic ${topic} is not handled`);

    const parsed = parseJsonBody(d.rawBody);
    const isCheckout = topic.startsWith("checkout/");
    const resource = isCheckout ? deps.validateCheckout(parsed).checkout : deps.validateOrder(parsed).order;
    const headerVersion = RECHARGE_API_VERSIONS.find((v) => v === d.headers.version?.trim());
    const version = detectVersion(resource) ?? headerVersion ?? deps.defaultVersion;

    const id = resource[isCheckout ? "token" : "id"] ?? (isCheckout ? resource["external_checkout_id"] : undefined);
    const updatedAt = resource["updated_at"] ?? resource["completed_at"];
    const resourceId = id === undefined || id === null ? null : String(id);
    const r = await storeInboxEvent(deps.db, inboxEvent({ source: "webhook", topic, topicSource, text, resourceId, updatedAt, apiVersion: version, correlationId: d.requestId }), {
      maxAttempts: deps.maxAttempts,
      now,
    });
    if (r.inserted) {
      d.log.info("Recharge webhook accepted", { topic, topicSource, eventId: r.id, rechargeId: resourceId, apiVersion: version });
      deps.onEnqueued();
      return { status: "accepted", eventId: r.id, topic, topicSource };
    }
    d.log.info("Recharge webhook is a duplicate", { topic, topicSource, eventId: r.id, rechargeId: resourceId });
    return { status: "duplicate", eventId: r.id, topic, topicSource };
  };
}

/**
 * The body's JSON value, read only to tell its topic. Text that a handled topic's own checks would
 * refuse (U+0000 escapes, lone surrogates, deep nesting) is no reason to refuse an unhandled one,
 * which is kept as it came; a handled one meets parseJsonBody after this. Not JSON at all: refused
 * with parseJsonBody's answer.
 */
function parseLeniently(raw: Buffer, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    parseJsonBody(raw);
    throw new PayloadError("json_malformed", "The request body is not valid JSON.");
  }
}
