import assert from "node:assert/strict";
import { test } from "node:test";
import { compareSubscriptions, isOurs, readWebhooksPage, type RemoteWebhook, type WantedWebhooks } from "../../src/recharge/subscriptions.js";

const WANTED: WantedWebhooks = {
  publicUrl: "https://orders.example.com/",
  topics: ["order/created", "order/processed", "order/updated", "checkout/processed"],
  version: "2021-11",
};
const hook = (id: number, topic: string, address: string, version: string | null = "2021-11"): RemoteWebhook => ({ id: String(id), topic, address, version: version ?? undefined });
const at = (topic: string): string => `https://orders.example.com/webhooks/recharge/${topic}`;

test("nothing registered: every topic missing, one creation each at its per-topic URL with the explicit version", () => {
  const r = compareSubscriptions([], WANTED);
  assert.equal(r.ok, false);
  assert.deepEqual(
    r.topics.map((t) => t.state),
    ["missing", "missing", "missing", "missing"],
  );
  assert.deepEqual(
    r.actions,
    WANTED.topics.map((topic) => ({ kind: "create", topic, address: at(topic), version: "2021-11" })),
  );
});

test("all registered, per-topic (slash or dash) or at the one URL: ok, nothing to do; other apps' webhooks are counted, never touched", () => {
  const remote = [
    hook(1, "order/created", at("order/created")),
    hook(2, "order/processed", at("order-processed")),
    hook(3, "order/updated", "https://orders.example.com/webhooks/recharge"),
    hook(4, "checkout/processed", at("checkout/processed")),
    hook(5, "order/created", "https://other-app.example/hooks/recharge", "2021-01"),
    hook(6, "subscription/created", "https://other-app.example/x", null),
  ];
  const r = compareSubscriptions(remote, WANTED);
  assert.equal(r.ok, true);
  assert.deepEqual(r.actions, []);
  assert.equal(r.others, 2);
});

test("a wrong version, none (the store's default), an old host: corrected in place; duplicates of ours deleted after", () => {
  const remote = [
    hook(10, "order/created", at("order/created"), "2021-01"),
    hook(11, "order/processed", at("order/processed"), null),
    hook(12, "order/updated", "https://old-host.example/webhooks/recharge/order/updated"),
    hook(13, "checkout/processed", at("checkout/processed")),
    hook(14, "checkout/processed", at("checkout/processed")),
    hook(15, "order/updated", "https://other-app.example/webhooks", "2021-01"),
  ];
  const r = compareSubscriptions(remote, WANTED);
  assert.deepEqual(
    r.topics.map((t) => t.state),
    ["wrong_version", "wrong_version", "wrong_address", "duplicate"],
  );
  assert.deepEqual(
    r.actions.map((a) => [a.kind, "id" in a ? a.id : undefined, a.address]),
    [
      ["update", "10", at("order/created")],
      ["update", "11", at("order/processed")],
      ["update", "12", at("order/updated")],
      ["delete", "14", at("checkout/processed")],
    ],
  );
  assert.ok(r.actions.every((a) => a.kind === "delete" || a.version === "2021-11"));
  assert.equal(r.others, 1);
});

test("only the configured topics are wanted; ours for another topic stay", () => {
  const r = compareSubscriptions([hook(1, "checkout/processed", at("checkout/processed"), "2021-01")], { ...WANTED, topics: ["order/created"] });
  assert.deepEqual(r.actions, [{ kind: "create", topic: "order/created", address: at("order/created"), version: "2021-11" }]);
});

test("ours: an address on an orderbridge Recharge route for its own topic, or the one URL", () => {
  assert.equal(isOurs(hook(1, "order/created", "https://x.example/prefix/webhooks/recharge/order/created")), true);
  assert.equal(isOurs(hook(1, "order/created", "https://x.example/webhooks/recharge")), true);
  assert.equal(isOurs(hook(1, "order/created", "https://x.example/webhooks/recharge/order/updated")), false);
  assert.equal(isOurs(hook(1, "order/created", "not a url")), false);
});

test("GET /webhooks answers are read liberally", () => {
  assert.deepEqual(readWebhooksPage({ webhooks: [{ id: 6, address: "https://a/x", topic: "Order/Created", version: "" }, { id: 7 }], next_cursor: "abc" }), {
    webhooks: [{ id: "6", address: "https://a/x", topic: "order/created", version: undefined }],
    next: "abc",
  });
  assert.equal(readWebhooksPage({ errors: "x" }), undefined);
  assert.equal(readWebhooksPage({ webhooks: [], next: "n" })?.next, "n");
});
