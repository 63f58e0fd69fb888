import { kx, type Tx } from "./handle.js";
import { param, prepare } from "./prepared.js";
import type { SpCallbackRow } from "./schema.js";

/**
 * The `sp_callbacks` table: one row per Subscribe Pro idempotency key, its state, the attempt that
 * holds it and the stored answer. The state machine that moves it is src/orders/idempotency.ts;
 * these are its reads and conditional writes.
 */
export type CallbackRow = SpCallbackRow;
export type CallbackState = SpCallbackRow["state"];

export async function findCallback(tx: Tx, key: string): Promise<CallbackRow | undefined> {
  return kx(tx).selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", key).executeTakeFirst();
}

/** Creates the key as `processing` under `attemptId`; false when the key exists. */
export async function insertProcessing(tx: Tx, o: { key: string; bodyHash: string; attemptId: string; leaseUntil: number; requestId: string; now: number }): Promise<boolean> {
  const inserted = await kx(tx)
    .insertInto("sp_callbacks")
    .values({
      idempotency_key: o.key,
      body_hash: o.bodyHash,
      state: "processing",
      attempt_id: o.attemptId,
      lease_until: o.leaseUntil,
      status: null,
      response_body: null,
      order_number: null,
      request_id: o.requestId,
      created_at: o.now,
      updated_at: o.now,
    })
    .onConflict((oc) => oc.column("idempotency_key").doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Moves the key to `processing` under a new attempt, if `fromAttemptId` still holds it; false otherwise. */
export async function takeOver(
  tx: Tx,
  o: { key: string; fromAttemptId: string; attemptId: string; bodyHash: string; leaseUntil: number; requestId: string; now: number },
): Promise<boolean> {
  const taken = await kx(tx)
    .updateTable("sp_callbacks")
    .set({ state: "processing", attempt_id: o.attemptId, body_hash: o.bodyHash, lease_until: o.leaseUntil, request_id: o.requestId, updated_at: o.now })
    .where("idempotency_key", "=", o.key)
    .where("attempt_id", "=", o.fromAttemptId)
    .executeTakeFirst();
  return Number(taken.numUpdatedRows) === 1;
}

/** Stores an attempt's answer and final state, only while that attempt holds the key `processing`. */
export async function finishProcessing(
  tx: Tx,
  o: { key: string; attemptId: string; state: Exclude<CallbackState, "processing" | "pruned">; status: number; body: string; orderNumber: string | null; now: number },
): Promise<boolean> {
  const res = await kx(tx)
    .updateTable("sp_callbacks")
    .set({ state: o.state, status: o.status, response_body: o.body, order_number: o.orderNumber, updated_at: o.now })
    .where("idempotency_key", "=", o.key)
    .where("attempt_id", "=", o.attemptId)
    // Only from processing: a late failure report never overwrites a stored 201/202.
    .where("state", "=", "processing")
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * Statements of the one-transaction path (the order and its answer in one commit), compiled once
 * for the database `root` is a handle of.
 */
export function createCallbackStatements(root: Tx) {
  const db = kx(root);
  const byKey = prepare(db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", param<string>("key")));
  // An outcome stored unless the key is done (a stored order is final, never overwritten by a
  // duplicate or a late failure) or held by a live claim.
  const store = prepare(
    db
      .insertInto("sp_callbacks")
      .values({
        idempotency_key: param("key"),
        body_hash: param("bodyHash"),
        state: param("state"),
        attempt_id: param("attemptId"),
        lease_until: param("now"),
        status: param("status"),
        response_body: param("body"),
        order_number: param("orderNumber"),
        request_id: param("requestId"),
        created_at: param("now"),
        updated_at: param("now"),
      })
      .onConflict((oc) =>
        oc
          .column("idempotency_key")
          .doUpdateSet({
            body_hash: param("bodyHash"),
            state: param("state"),
            attempt_id: param("attemptId"),
            status: param("status"),
            response_body: param("body"),
            order_number: param("orderNumber"),
            request_id: param("requestId"),
            updated_at: param("now"),
          })
          // Never over a stored order (final), nor over a live claim of the claim path.
          .where((eb) =>
            eb.or([eb("sp_callbacks.state", "=", "retryable"), eb.and([eb("sp_callbacks.state", "=", "processing"), eb("sp_callbacks.lease_until", "<=", param<number>("now"))])]),
          ),
      ),
  );
  return {
    async findByKey(tx: Tx, key: string): Promise<CallbackRow | undefined> {
      return (await byKey.run(kx(tx), { key })).rows[0];
    },
    /**
     * Stores an answer (state done or retryable) unless the key is done or held by a live claim:
     * false then, and nothing was written.
     */
    async storeUnlessHeld(
      tx: Tx,
      o: {
        key: string;
        bodyHash: string;
        state: "done" | "retryable";
        attemptId: string;
        now: number;
        status: number;
        body: string;
        orderNumber: string | null;
        requestId: string;
      },
    ): Promise<boolean> {
      const res = await store.run(kx(tx), o);
      return Number(res.numAffectedRows ?? 0n) === 1;
    },
  };
}
