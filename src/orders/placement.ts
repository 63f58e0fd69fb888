import { PlatformError } from "../errors.js";
import type { Logger } from "../logger.js";
import { transactionOrRollback, type Tx } from "../store/handle.js";
import { checkResult, placeWithDeadline, withDeadline } from "./place.js";
import type { NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "./types.js";

/**
 * Glossary: a *ledger* is a source's own record of an order (Subscribe Pro: the callback's stored
 * answer under its idempotency key; Recharge: the order's sync row and its write-back jobs). A
 * *placement* makes the platform's order and the ledger's record agree, exactly once.
 */

/** Before the platform is asked: this attempt may go on, or the ledger already has the answer. */
export type Claimed<T> = { kind: "owner" } | { kind: "answered"; value: T };

/**
 * What recording did: kept (the value is the answer), or held: the key belongs to another live
 * attempt, so nothing may be recorded now (an in-store placement undoes its order and claims the
 * key the usual way; after a claim it cannot happen).
 */
export type Recorded<T> = { kind: "kept"; value: T } | { kind: "held" };

/**
 * A source's side of placing one order. Every method may be called at most once per placement,
 * except `record`, which runs again when its transaction is run again (a deadlock): it must build
 * everything from its arguments alone.
 */
export interface Ledger<T> {
  /** Takes the order's key before a platform outside the database is asked. */
  claim(): Promise<Claimed<T>>;
  /**
   * Records the platform's result (null: nothing was sent, every line was refused before) in `tx`:
   * the order's own transaction for an in-store placement, one right after the platform answered
   * for a remote one.
   */
  record(tx: Tx, result: PlatformOrderResult | null): Promise<Recorded<T>>;
  /**
   * The placement failed with `error` (thrown on after this). `mayHavePlaced`: the platform was
   * asked and did not plainly refuse, so an order may exist although none was recorded.
   */
  failed(error: unknown, o: { mayHavePlaced: boolean }): Promise<void>;
}

export interface PlaceRequest {
  /** Undefined: nothing to send to the platform (the ledger records the refusal alone). */
  order: NormalizedOrder | undefined;
  /** Same value on every retry of the same order. */
  idempotencyKey: string;
  log: Logger;
  /** Aborts the platform call early (shutdown). */
  signal?: AbortSignal;
}

export interface Placed<T> {
  value: T;
  /** The platform's result; null when nothing was sent, or the ledger answered at its claim. */
  result: PlatformOrderResult | null;
}

/**
 * The placement port, one implementation per kind of platform, picked in the composition root
 * (src/service.ts) and used by every source:
 * - in-store (the local platform): the order, its stock and the ledger's record commit in one
 *   transaction, so no claim is needed first; only a key held by another attempt is claimed.
 * - remote (any PlatformAdapter): claim → platform → record.
 *
 * Example: `const { value } = await placement.place({ order, idempotencyKey, log }, ledger)`.
 */
export interface Placement {
  /** The platform's name (logs, messages). */
  readonly platformName: string;
  place<T>(req: PlaceRequest, ledger: Ledger<T>): Promise<Placed<T>>;
}

/** What the in-store placement needs of the local platform: one attempt at an order, recorded with it. */
export interface InStorePlatform {
  readonly name: string;
  /**
   * Places (or finds) the order under `key` and calls `record` in the same transaction. Held:
   * `record` answered held, and the whole transaction was undone.
   */
  placeAndRecord<T>(
    order: NormalizedOrder,
    key: string,
    record: (tx: Tx, result: PlatformOrderResult) => Promise<Recorded<T>>,
    o: { log: Logger; signal?: AbortSignal },
  ): Promise<{ result: PlatformOrderResult; recorded: Recorded<T> }>;
}

/** A key still held by another attempt after this one claimed it: the claim said otherwise (a bug). */
const heldAfterClaim = (key: string): Error => new Error(`the key ${key} is held by another attempt after this one claimed it`);

/** Records in a transaction of its own, undone when the ledger answers held. */
async function recordAlone<T>(db: Tx, ledger: Ledger<T>, result: PlatformOrderResult | null): Promise<Recorded<T>> {
  const r = await transactionOrRollback(db, async (tx) => {
    const recorded = await ledger.record(tx, result);
    return { value: recorded, rollBack: recorded.kind === "held" };
  });
  return r.value;
}

export function createInStorePlacement(o: { db: Tx; platform: InStorePlatform; deadlineMs: number }): Placement {
  /** One attempt; errors are the ledger's to hear (the order's transaction rolled back: nothing of it exists). */
  async function attempt<T>(req: PlaceRequest, ledger: Ledger<T>): Promise<{ recorded: Recorded<T>; result: PlatformOrderResult | null }> {
    try {
      const order = req.order;
      if (order === undefined) return { recorded: await recordAlone(o.db, ledger, null), result: null };
      const placed = await withDeadline(o.platform.name, o.deadlineMs, req.signal, (signal) =>
        o.platform.placeAndRecord(order, req.idempotencyKey, (tx, r) => ledger.record(tx, r), { log: req.log, signal }),
      );
      checkResult(order, placed.result);
      return placed;
    } catch (e) {
      await ledger.failed(e, { mayHavePlaced: false });
      throw e;
    }
  }
  return {
    platformName: o.platform.name,
    async place(req, ledger) {
      let r = await attempt(req, ledger);
      if (r.recorded.kind === "held") {
        // Another attempt holds the key (or its last attempt's outcome is uncertain, or its answer
        // was pruned): the claim decides whether, and when, this one may go on.
        const claim = await ledger.claim();
        if (claim.kind === "answered") return { value: claim.value, result: null };
        r = await attempt(req, ledger);
        if (r.recorded.kind === "held") throw heldAfterClaim(req.idempotencyKey);
      }
      return { value: r.recorded.value, result: r.result };
    },
  };
}

export function createRemotePlacement(o: { db: Tx; platform: PlatformAdapter; deadlineMs: number; redactEmail: boolean }): Placement {
  return {
    platformName: o.platform.name,
    async place(req, ledger) {
      const claim = await ledger.claim();
      if (claim.kind === "answered") return { value: claim.value, result: null };
      let asked = false;
      try {
        let result: PlatformOrderResult | null = null;
        if (req.order !== undefined) {
          asked = true;
          result = await placeWithDeadline(o.platform, req.order, {
            idempotencyKey: req.idempotencyKey,
            deadlineMs: o.deadlineMs,
            log: req.log,
            redactEmail: o.redactEmail,
            ...(req.signal === undefined ? {} : { signal: req.signal }),
          });
        }
        const recorded = await recordAlone(o.db, ledger, result);
        if (recorded.kind === "held") throw heldAfterClaim(req.idempotencyKey);
        return { value: recorded.value, result };
      } catch (e) {
        await ledger.failed(e, { mayHavePlaced: asked && !(e instanceof PlatformError && e.notPlaced) });
        throw e;
      }
    },
  };
}
