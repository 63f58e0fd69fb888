import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { PayloadError, SignatureError } from "../errors.js";
import { enqueue } from "../jobs/queue.js";
import type { Logger } from "../logger.js";
import { verifyRechargeWebhook } from "../security/recharge-signature.js";
import type { Database } from "../store/schema.js";
import { parseJsonBody } from "../validation/json.js";
import type { Validator } from "../validation/schemas.js";
import { JOB_WEBHOOK } from "./handlers.js";
import { HANDLED_TOPICS, RECHARGE_API_VERSIONS, detectVersion, type RechargeApiVersion } from "./order.js";

export interface RechargeReceiverDeps {
  db: Kysely<Database>;
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

export interface RechargeDelivery {
  /** Normalised topic ("order/created"), or undefined when neither the URL nor a header named one. */
  topic: string | undefined;
  rawBody: Buffer;
  headers: { legacy?: string | undefined; signature?: string | undefined; timestamp?: string | undefined; version?: string | undefined };
  requestId: string;
  log: Logger;
}

export interface RechargeAck {
  status: "accepted" | "duplicate" | "ignored";
  /** Null for an unsigned empty body, which is answered but not stored. */
  eventId: string | null;
  topic: string | null;
  reason?: string;
}

/** "order-created", "order_created", "ORDER/CREATED" → "order/created". */
export function normalizeTopic(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim().toLowerCase().replace(/^\/+|\/+$/g, "");
  if (t === "") return undefined;
  if (t.includes("/")) return t;
  const m = /^([a-z]+)[-_.](.+)$/.exec(t);
  return m === null ? t : `${m[1]}/${m[2]}`;
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

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

    const ignore = async (reason: string): Promise<RechargeAck> => {
      const r = await enqueue(
        deps.db,
        { kind: JOB_WEBHOOK, lane: "inbox", prefix: "evt", topic: d.topic ?? null, state: "ignored", outcome: reason, body: text.trim() === "" ? null : text, maxAttempts: 0, correlationId: d.requestId },
        now,
      );
      d.log.info("Recharge webhook ignored", { topic: d.topic, reason, eventId: r.id });
      return { status: "ignored", eventId: r.id, topic: d.topic ?? null, reason };
    };
    if (empty && !signed) {
      // Not stored, and logged at debug only: anyone can send it, and it asks for nothing.
      d.log.debug("Recharge webhook ignored: unsigned empty body (Recharge's test webhook)", { topic: d.topic });
      return { status: "ignored", eventId: null, topic: d.topic ?? null, reason: "empty body (Recharge's test webhook)" };
    }
    if (empty) return ignore("empty body (Recharge's test webhook)");
    if (d.topic === undefined) {
      throw new PayloadError(
        "topic_missing",
        "The webhook topic is unknown: register each topic at its own URL, e.g. /webhooks/recharge/order/created, or send X-Recharge-Topic.",
        [{ pointer: "/headers/x-recharge-topic", message: "is required when the URL names no topic" }],
      );
    }
    if (!(HANDLED_TOPICS as readonly string[]).includes(d.topic)) return ignore(`topic ${d.topic} is not handled`);

    const parsed = parseJsonBody(d.rawBody);
    const isCheckout = d.topic.startsWith("checkout/");
    const resource = isCheckout ? deps.validateCheckout(parsed).checkout : deps.validateOrder(parsed).order;
    const headerVersion = RECHARGE_API_VERSIONS.find((v) => v === d.headers.version?.trim());
    const version = detectVersion(resource) ?? headerVersion ?? deps.defaultVersion;

    const id = resource[isCheckout ? "token" : "id"] ?? (isCheckout ? resource["external_checkout_id"] : undefined);
    const updatedAt = resource["updated_at"] ?? resource["completed_at"];
    const resourceId = id === undefined || id === null ? null : String(id);
    // Recharge sends no delivery id: a re-delivery is recognised by content.
    const dedupeKey = resourceId !== null && typeof updatedAt === "string" ? `recharge:${d.topic}:${resourceId}:${updatedAt}` : null;
    const r = await enqueue(
      deps.db,
      {
        kind: JOB_WEBHOOK,
        lane: "inbox",
        prefix: "evt",
        topic: d.topic,
        dedupeKey,
        bodyHash: sha256(`${d.topic}\n${text}`),
        resourceId,
        apiVersion: version,
        body: text,
        maxAttempts: deps.maxAttempts,
        correlationId: d.requestId,
      },
      now,
    );
    if (r.inserted) {
      d.log.info("Recharge webhook accepted", { topic: d.topic, eventId: r.id, rechargeId: resourceId, apiVersion: version });
      deps.onEnqueued();
      return { status: "accepted", eventId: r.id, topic: d.topic };
    }
    d.log.info("Recharge webhook is a duplicate", { topic: d.topic, eventId: r.id, rechargeId: resourceId });
    return { status: "duplicate", eventId: r.id, topic: d.topic };
  };
}
