/**
 * The Recharge sweep, pure: which window a run lists, and what each order it finds needs. Recharge
 * deletes a webhook after 48 hours of failed deliveries, and anyone with the token can remove one, so
 * the sweep lists the orders updated since the last run (`GET /orders`) and feeds every successful
 * one orderbridge has not placed into the inbox, as a webhook would (src/recharge/sweep.ts does the
 * I/O). The order itself is placed at most once whatever comes in which order: the inbox's dedupe
 * key, then the recharge_orders row and the platform's idempotency key (the Recharge order id).
 */
import type { JobState } from "../store/jobs.js";
import type { RechargeOrderView } from "./order.js";

/**
 * How far back of the end of the last run the next one starts. Recharge's clock and ours differ, and
 * an order may be listed a little after its updated_at: orders seen twice cost nothing (the second
 * time they need nothing).
 */
export const SWEEP_OVERLAP_MS = 5 * 60_000;
/** Recharge's largest page (seed-004, "Cursor Pagination": limit up to 250). */
export const SWEEP_PAGE_SIZE = 250;

export interface SweepCursor {
  watermark: number | null;
  runFrom: number | null;
  runUntil: number | null;
  pageCursor: string | null;
}

export interface SweepWindow {
  from: number;
  until: number;
  /** The next page's cursor of a run that was interrupted, to go on from. */
  pageCursor: string | undefined;
  /** True when this goes on with an interrupted run (restart, lost lease, failed page). */
  resumed: boolean;
}

/** The window of the next run: the interrupted one, else from the watermark (or `lookbackMs` ago, the first time) up to now. */
export function sweepWindow(c: SweepCursor | undefined, now: number, lookbackMs: number): SweepWindow {
  if (c !== undefined && c.runFrom !== null && c.runUntil !== null) {
    return { from: c.runFrom, until: c.runUntil, pageCursor: c.pageCursor ?? undefined, resumed: true };
  }
  const from = c?.watermark ?? now - lookbackMs;
  return { from: Math.min(from, now), until: now, pageCursor: undefined, resumed: false };
}

/** Where the run after a finished one starts. */
export const nextWatermark = (w: Pick<SweepWindow, "until">): number => w.until - SWEEP_OVERLAP_MS;

/** A time as Recharge writes its own (`2026-12-01T10:00:00+00:00`), for updated_at_min/_max. */
export function rechargeTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/** What orderbridge knows of one Recharge order. */
export interface OrderFacts {
  view: RechargeOrderView;
  /** Its recharge_orders row, when orderbridge placed it. */
  placed: { platformOrderId: string; orderNumber: string } | undefined;
  /** Its inbox events (received webhooks, earlier sweeps), oldest first. */
  events: { id: string; state: JobState }[];
  /** Its order write-back jobs (`PUT /orders/{id}`). */
  orderWriteBacks: { id: string; state: JobState }[];
}

export type SweepDecision =
  /** Into the inbox, as a webhook would be. */
  | { action: "place"; reason: string }
  /** Placed, but Recharge has no external id: queue its write-backs (none exist), or replay the dead ones. */
  | { action: "write_back"; replay: string[]; reason: string }
  | { action: "none"; reason: string };

const IN_FLIGHT: ReadonlySet<JobState> = new Set(["pending", "running"]);

export function reconcileOrder(f: OrderFacts): SweepDecision {
  const { view, placed } = f;
  if (view.status !== "success") return { action: "none", reason: `status is ${view.status || "missing"}: only successful orders are placed` };
  if (view.externalOrderId !== undefined) {
    if (placed === undefined) return { action: "none", reason: `it has external order id ${view.externalOrderId} (placed by another system)` };
    return {
      action: "none",
      reason:
        view.externalOrderId === placed.platformOrderId
          ? `synced: placed as ${placed.orderNumber}, written back`
          : `placed as ${placed.orderNumber}; Recharge shows external order id ${view.externalOrderId}`,
    };
  }
  if (placed !== undefined) {
    if (f.orderWriteBacks.length === 0) return { action: "write_back", replay: [], reason: `placed as ${placed.orderNumber}, never written back` };
    if (f.orderWriteBacks.some((j) => IN_FLIGHT.has(j.state))) return { action: "none", reason: `placed as ${placed.orderNumber}; its write-back is under way` };
    const dead = f.orderWriteBacks.filter((j) => j.state === "dead").map((j) => j.id);
    if (dead.length > 0) return { action: "write_back", replay: dead, reason: `placed as ${placed.orderNumber}; its write-back died` };
    // Done, yet Recharge shows none: not written again, or every write-back (which updates the
    // order, so the next sweep lists it again) would be repeated for ever.
    return { action: "none", reason: `placed as ${placed.orderNumber}; its write-back was answered 2xx, yet Recharge shows no external order id` };
  }
  const inFlight = f.events.find((e) => IN_FLIGHT.has(e.state));
  if (inFlight !== undefined) return { action: "none", reason: `event ${inFlight.id} for it is being processed` };
  const dead = f.events.filter((e) => e.state === "dead");
  if (dead.length > 0) return { action: "none", reason: `event ${dead.map((e) => e.id).join(", ")} for it is dead: fix the cause, then replay it (orderbridge events replay)` };
  return { action: "place", reason: f.events.length === 0 ? "no webhook came for it" : "its webhooks were not placed (it was not yet successful then)" };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `GET /orders`'s answer → its orders and the next page's cursor (`next_cursor`, or `next` as its example shows); undefined when it is no list. */
export function readOrdersPage(data: unknown): { orders: Obj[]; next: string | undefined } | undefined {
  if (!isObj(data) || !Array.isArray(data["orders"])) return undefined;
  let next: string | undefined;
  for (const key of ["next_cursor", "next"]) {
    const v = data[key];
    if (next === undefined && typeof v === "string" && v !== "") next = v;
  }
  return { orders: data["orders"].filter(isObj), next };
}
