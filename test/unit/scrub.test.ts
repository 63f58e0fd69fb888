import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { noScrub, remoteRequestId, scrubber, sensitiveValues } from "../../src/security/scrub.js";
import { mapSpRequest } from "../../src/subscribe-pro/map-request.js";
import type { SpCallbackRequest } from "../../src/subscribe-pro/types.js";

describe("scrubbing known values out of free text", () => {
  it("replaces every occurrence, in any case and in JSON- or URL-escaped form, longest value first", () => {
    const s = scrubber(["pm_1AbCdEf", "pm_1AbCdEfGh", "jane+tea@example.com", 'quo"te'.repeat(2)]);
    assert.equal(s("token pm_1AbCdEfGh declined (pm_1abcdef, PM_1ABCDEF)"), "token [redacted] declined ([redacted], [redacted])");
    assert.equal(s('{"email":"jane+tea@example.com","q":"quo\\"tequo\\"te"}'), '{"email":"[redacted]","q":"[redacted]"}');
    assert.equal(s("/customers?email=jane%2Btea%40example.com"), "/customers?email=[redacted]");
    assert.equal(s("nothing to see"), "nothing to see");
  });

  it("leaves values shorter than 4 characters alone (a profile id of 12 would blank out every 12)", () => {
    const s = scrubber(["12", "abc", undefined, "1234"]);
    assert.deepEqual(s.values, ["1234"]);
    assert.equal(s("line 12 of abc: profile 1234"), "line 12 of abc: profile [redacted]");
  });

  it("an excerpt never keeps part of a value its limit cuts through, however replacements shift the text", () => {
    const token = "tok_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const s = scrubber([token]);
    // The token starts before the limit and ends after it.
    const text = `${"x".repeat(95)}${token}${"y".repeat(50)}`;
    const out = s.excerpt(text, 100);
    assert.equal(out, `${"x".repeat(95)}[reda…`);
    assert.doesNotMatch(out, /tok_/);
    // Earlier replacements shorten the text, so the cut falls further into the original.
    const shifted = `${token} ${token} ${"z".repeat(40)}${token}`;
    const cut = s.excerpt(shifted, 70);
    assert.doesNotMatch(cut, /tok_|ABCD/);
    assert.ok(cut.endsWith("…"));
    assert.equal(s.excerpt("short", 100), "short");
    assert.equal(noScrub.excerpt("abcdef", 3), "abc…");
  });

  it("with() adds values (an adapter's credential) to the order's", () => {
    const s = scrubber(["pm_token_1"]).with(["shpat_secret"]);
    assert.equal(s("pm_token_1 / shpat_secret"), "[redacted] / [redacted]");
  });
});

describe("an order's sensitive values", () => {
  const req = {
    customerEmail: "jane@example.com",
    currency: "USD",
    payment: { paymentToken: "pm_card_visa_4242", paymentProfileId: 7, creditcard: { token: "cc_tok_9999", last4: "4242", month: 12 }, note: "{not json" },
    items: [{ productSku: "A", qty: 1, subscription: { id: "s" } }],
  } as unknown as SpCallbackRequest;
  const { order } = mapSpRequest(req);

  it("are every payment value, the leaves of JSON-encoded payment fields, and the email only when asked", () => {
    const without = sensitiveValues(order, { email: false });
    for (const v of ["pm_card_visa_4242", "7", "cc_tok_9999", "4242", "{not json"]) assert.ok(without.includes(v), v);
    assert.equal(without.includes("jane@example.com"), false);
    assert.ok(sensitiveValues(order, { email: true }).includes("jane@example.com"));
    const s = scrubber(sensitiveValues(order, { email: true }));
    assert.equal(s("card cc_tok_9999 for jane@example.com declined"), "card [redacted] for [redacted] declined");
  });

  it("a remote request id is quoted only when it is a plain token that holds none of them", () => {
    const s = scrubber(sensitiveValues(order, { email: true }));
    assert.equal(remoteRequestId("req-42.a_b:c", s), "req-42.a_b:c");
    assert.equal(remoteRequestId(["first", "second"], s), "first");
    assert.equal(remoteRequestId("x pm_card_visa_4242", s), undefined);
    assert.equal(remoteRequestId("pm_card_visa_4242", s), undefined);
    assert.equal(remoteRequestId(undefined, s), undefined);
  });
});
