import assert from "node:assert/strict";
import { test } from "node:test";
import { readOrderView } from "../../src/recharge/order.js";
import { nextWatermark, readOrdersPage, rechargeTime, reconcileOrder, sweepWindow, SWEEP_OVERLAP_MS, type OrderFacts } from "../../src/recharge/reconcile.js";

const view = (o: Record<string, unknown> = {}) => readOrderView({ id: 7, status: "success", external_order_id: { ecommerce: null }, ...o });
const facts = (f: Partial<OrderFacts> = {}): OrderFacts => ({ view: view(), placed: undefined, events: [], orderWriteBacks: [], ...f });
const placed = { platformOrderId: "100271", orderNumber: "ABC-100271" };

test("a successful order orderbridge never placed, with no event under way: place it", () => {
  assert.equal(reconcileOrder(facts()).action, "place");
  assert.equal(reconcileOrder(facts({ events: [{ id: "evt_1", state: "skipped" }] })).action, "place", "skipped while it was queued, successful now");
});

test("nothing to do: not successful, another system's, an event under way or dead, synced", () => {
  const none = (f: OrderFacts): string => {
    const d = reconcileOrder(f);
    assert.equal(d.action, "none");
    return d.reason;
  };
  assert.match(none(facts({ view: view({ status: "QUEUED" }) })), /status is queued/);
  assert.match(none(facts({ view: view({ external_order_id: { ecommerce: "X1" } }) })), /another system/);
  assert.match(none(facts({ events: [{ id: "evt_1", state: "pending" }] })), /evt_1 .*being processed/);
  assert.match(none(facts({ events: [{ id: "evt_2", state: "dead" }] })), /evt_2 .*dead.*replay/);
  assert.match(none(facts({ placed, view: view({ external_order_id: { ecommerce: "100271" } }) })), /synced/);
});

test("placed but no external id in Recharge: write back when never queued, replay a dead one, leave one under way or done", () => {
  assert.deepEqual(reconcileOrder(facts({ placed })), { action: "write_back", replay: [], reason: "placed as ABC-100271, never written back" });
  assert.deepEqual(reconcileOrder(facts({ placed, orderWriteBacks: [{ id: "job_1", state: "dead" }] })), {
    action: "write_back",
    replay: ["job_1"],
    reason: "placed as ABC-100271; its write-back died",
  });
  assert.equal(reconcileOrder(facts({ placed, orderWriteBacks: [{ id: "job_1", state: "running" }] })).action, "none");
  assert.equal(reconcileOrder(facts({ placed, orderWriteBacks: [{ id: "job_1", state: "done" }] })).action, "none", "never repeated for ever");
});

test("windows: the first looks back, the next starts at the watermark, an interrupted one goes on where it was", () => {
  const now = Date.parse("2026-12-02T10:00:00Z");
  assert.deepEqual(sweepWindow(undefined, now, 72 * 3_600_000), { from: now - 72 * 3_600_000, until: now, pageCursor: undefined, resumed: false });
  const w = sweepWindow({ watermark: now - 60_000, runFrom: null, runUntil: null, pageCursor: null }, now, 1);
  assert.deepEqual(w, { from: now - 60_000, until: now, pageCursor: undefined, resumed: false });
  assert.equal(nextWatermark(w), now - SWEEP_OVERLAP_MS);
  assert.deepEqual(sweepWindow({ watermark: 5, runFrom: 10, runUntil: 20, pageCursor: "abc" }, now, 1), { from: 10, until: 20, pageCursor: "abc", resumed: true });
  assert.equal(rechargeTime(now), "2026-12-02T10:00:00+00:00");
});

test("GET /orders answers are read liberally", () => {
  assert.deepEqual(readOrdersPage({ orders: [{ id: 1 }, "x"], next_cursor: "n1" }), { orders: [{ id: 1 }], next: "n1" });
  assert.deepEqual(readOrdersPage({ orders: [], next: "n2", previous: null }), { orders: [], next: "n2" });
  assert.deepEqual(readOrdersPage({ orders: [], next_cursor: null }), { orders: [], next: undefined });
  assert.equal(readOrdersPage({ errors: "x" }), undefined);
});
