import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { signStandardWebhook, verifyStandardWebhook } from "../../src/security/standard-webhooks.js";

// The example of the Standard Webhooks reference libraries (libraries/javascript tests).
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS = 1614265330;
const BODY = '{"test": 2432232314}';
const EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

describe("Standard Webhooks signatures", () => {
  it("signs the reference example", () => {
    assert.equal(signStandardWebhook(SECRET, ID, TS, BODY), EXPECTED);
  });

  it("verifies within the tolerance, among several signatures, and refuses the rest", () => {
    const h = { id: ID, timestamp: String(TS), signature: `v1,bm90LWl0 ${EXPECTED}` };
    assert.deepEqual(verifyStandardWebhook(SECRET, h, BODY, { nowSeconds: TS + 10 }), { ok: true });
    assert.deepEqual(verifyStandardWebhook(SECRET, h, BODY, { nowSeconds: TS + 400 }), { ok: false, reason: "expired" });
    assert.deepEqual(verifyStandardWebhook(SECRET, h, BODY + " ", { nowSeconds: TS }), { ok: false, reason: "mismatch" });
    assert.deepEqual(verifyStandardWebhook(SECRET, { ...h, id: "msg_other" }, BODY, { nowSeconds: TS }), { ok: false, reason: "mismatch" });
    assert.deepEqual(verifyStandardWebhook(SECRET, { id: ID, timestamp: String(TS) }, BODY, { nowSeconds: TS }), { ok: false, reason: "missing" });
  });

  it("takes a plain-text secret as its UTF-8 bytes", () => {
    const sig = signStandardWebhook("plain secret", ID, TS, BODY);
    assert.equal(verifyStandardWebhook("plain secret", { id: ID, timestamp: String(TS), signature: sig }, BODY, { nowSeconds: TS }).ok, true);
  });
});
