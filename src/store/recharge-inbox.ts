import { enqueue, newJobId, type NewJob } from "./jobs.js";
import { kx, transaction, type Tx } from "./handle.js";
import type { RechargeInboxRow } from "./schema.js";

export type { RechargeInboxRow } from "./schema.js";

/**
 * The Recharge inbox (`recharge_inbox`): every webhook the receiver accepted or ignored, and every
 * order the sweep fed in, exactly as it came. Its unique keys (content key, body hash) make a
 * re-delivery a duplicate. A handled event is processed by the job of the same id, queued in the
 * transaction that records the event; an ignored one is recorded only.
 */
export interface NewInboxEvent {
  source: RechargeInboxRow["source"];
  topic: string | null;
  topicSource: string | null;
  dedupeKey: string | null;
  bodyHash: string | null;
  resourceId: string | null;
  apiVersion: string | null;
  body: string | null;
  /** Why it is recorded and not processed; undefined for an event to process. */
  ignoredReason?: string;
  correlationId: string | null;
}

/**
 * Records an event unless one with the same content key or body hash is there, and (when it is new
 * and `processing` is given) queues its processing: the job of the same id, in the same
 * transaction. Returns the id of the event that stands for this delivery and whether it was new.
 */
export async function addInboxEvent(tx: Tx, e: NewInboxEvent, now: number, processing?: (eventId: string) => NewJob): Promise<{ id: string; inserted: boolean }> {
  return transaction(tx, async (t) => {
    const db = kx(t);
    const keys: ["dedupe_key" | "body_hash", string][] = [];
    if (e.dedupeKey) keys.push(["dedupe_key", e.dedupeKey]);
    if (e.bodyHash) keys.push(["body_hash", e.bodyHash]);
    // A second try only when the duplicate it conflicted with was pruned (retention) in between.
    for (let attempt = 1; ; attempt++) {
      const id = newJobId("evt");
      const res = await db
        .insertInto("recharge_inbox")
        .values({
          id,
          source: e.source,
          topic: e.topic,
          topic_source: e.topicSource,
          dedupe_key: e.dedupeKey,
          body_hash: e.bodyHash,
          resource_id: e.resourceId,
          api_version: e.apiVersion,
          body: e.body,
          ignored_reason: e.ignoredReason ?? null,
          correlation_id: e.correlationId,
          received_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0n) === 1) {
        if (processing !== undefined && e.ignoredReason === undefined) await enqueue(t, { ...processing(id), id }, now);
        return { id, inserted: true };
      }
      const existing =
        keys.length === 0
          ? undefined
          : await db
              .selectFrom("recharge_inbox")
              .select("id")
              .where((eb) => eb.or(keys.map(([col, v]) => eb(col, "=", v))))
              .executeTakeFirst();
      if (existing !== undefined) return { id: existing.id, inserted: false };
      if (keys.length === 0 || attempt >= 3) throw new Error("the inbox event was neither inserted nor found: a conflict on its id");
    }
  });
}

export async function getInboxEvent(tx: Tx, id: string): Promise<RechargeInboxRow | undefined> {
  return kx(tx).selectFrom("recharge_inbox").selectAll().where("id", "=", id).executeTakeFirst();
}
