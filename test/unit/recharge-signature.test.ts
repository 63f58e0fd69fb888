import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config.js";
import { rechargeSignatureHeader, signRechargeLegacy, signRechargeTimestamped, verifyRechargeWebhook } from "../../src/security/recharge-signature.js";

// Known-answer vectors: shared/spec/recharge-webhooks.md §5.1 and §5.2.
const SECRET = "rc_client_secret_example";
const BODY = '{"order":{"id":70071255,"status":"success","is_prepaid":false}}';
const LEGACY = "9a7aae597db67c2d4ceb96a96bafaa6469f969deb8c5e5ae21cddc2a3524fd31";
const WRONG_HMAC = "fe14bb9db06377fc278bd0d834ecbcd439aa149045f76002f5498431ecb2d316";
const WRONG_SUFFIX = "4b1d29f548e4d957ab8bed90015662fd19a2c947a46d574bc662e705b0a18da5";
const T = 1700000000;
const V1 = "ae2eace9bb4a3250e2679cfb285398a9df8642bd605cff7679f4a6743652ee07";
const raw = Buffer.from(BODY, "utf8");
const opts = { nowSeconds: T + 10, toleranceSeconds: 172_800 };

describe("Recharge webhook signatures", () => {
  it("signs the spec's known-answer vectors", () => {
    assert.equal(signRechargeLegacy(SECRET, BODY), LEGACY);
    assert.equal(signRechargeLegacy(SECRET, raw), LEGACY);
    assert.equal(signRechargeTimestamped(SECRET, T, raw), V1);
    assert.equal(rechargeSignatureHeader(SECRET, T, raw), `t=${T},v1=${V1}`);
  });

  it("legacy: accepts the right digest in any case, refuses the two wrong constructions", () => {
    assert.deepEqual(verifyRechargeWebhook(raw, { legacy: LEGACY }, [SECRET], opts), { ok: true, scheme: "legacy", secretIndex: 0 });
    assert.equal(verifyRechargeWebhook(raw, { legacy: LEGACY.toUpperCase() }, [SECRET], opts).ok, true);
    for (const wrong of [WRONG_HMAC, WRONG_SUFFIX]) {
      const r = verifyRechargeWebhook(raw, { legacy: wrong }, [SECRET], opts);
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.reason, "mismatch");
    }
  });

  it("legacy: one changed byte, missing and malformed headers are refused with their reason", () => {
    const changed = Buffer.from(BODY.replace("70071255", "70071256"));
    assert.equal((verifyRechargeWebhook(changed, { legacy: LEGACY }, [SECRET], opts) as { reason: string }).reason, "mismatch");
    assert.equal((verifyRechargeWebhook(raw, {}, [SECRET], opts) as { reason: string }).reason, "missing");
    assert.equal((verifyRechargeWebhook(raw, { legacy: "abc" }, [SECRET], opts) as { reason: string }).reason, "malformed");
  });

  it("rotation: any configured secret verifies, and says which", () => {
    const r = verifyRechargeWebhook(raw, { legacy: LEGACY }, ["old-secret", SECRET], opts);
    assert.deepEqual(r, { ok: true, scheme: "legacy", secretIndex: 1 });
  });

  it("timestamped: verifies t=,v1= with or without the timestamp header, in any order, with extra schemes", () => {
    const header = `t=${T},v1=${V1}`;
    assert.deepEqual(verifyRechargeWebhook(raw, { signature: header }, [SECRET], opts), { ok: true, scheme: "timestamped", secretIndex: 0 });
    assert.equal(verifyRechargeWebhook(raw, { signature: header, timestamp: String(T) }, [SECRET], opts).ok, true);
    assert.equal(verifyRechargeWebhook(raw, { signature: `v2=zz, v1=${V1}, t=${T}` }, [SECRET], opts).ok, true);
    assert.equal(verifyRechargeWebhook(raw, { signature: `v1=${V1}`, timestamp: String(T) }, [SECRET], opts).ok, true);
  });

  it("timestamped: refuses outside the window, both ways", () => {
    for (const now of [T + 172_801, T - 172_801]) {
      const r = verifyRechargeWebhook(raw, { signature: `t=${T},v1=${V1}` }, [SECRET], { nowSeconds: now, toleranceSeconds: 172_800 });
      assert.equal(!r.ok && r.reason, "expired");
    }
  });

  it("timestamped: the window's edges as stripe-node draws them, and timestamps ahead of now, which stripe-node accepts", () => {
    // stripe-node src/Webhooks.ts and test/Webhook.spec.ts @ 663942164d3876f04bb26617b88f498ba785e580:
    // refused when floor(receivedAt / 1000) - t > tolerance; its tests use receivedAt 20000000 ms and
    // tolerance 10: t 15 s old is refused, 9 s old accepted. A timestamp ahead of now is never refused
    // there; here it is, past the same tolerance, as the Standard Webhooks libraries do ("too new").
    const now = 20_000_000 / 1000;
    const at = (t: number) => verifyRechargeWebhook(raw, { signature: rechargeSignatureHeader(SECRET, t, raw) }, [SECRET], { nowSeconds: now, toleranceSeconds: 10 });
    const cases: [number, boolean][] = [
      [now - 15, false],
      [now - 9, true],
      [now - 10, true],
      [now - 11, false],
      [now + 10, true],
      [now + 11, false],
    ];
    for (const [t, ok] of cases) {
      const r = at(t);
      assert.equal(r.ok, ok, `t = now ${t - now}`);
      if (!r.ok) assert.equal(r.reason, "expired");
    }
  });

  it("timestamped: a tolerance of 0 does not switch the check off (stripe-node's `tolerance || 0` does): it is refused at start", () => {
    assert.throws(() => loadConfig({ RECHARGE_SIGNATURE_TOLERANCE_S: "0" }), /RECHARGE_SIGNATURE_TOLERANCE_S must be a whole number from 1 to 2592000/);
  });

  it("timestamped: t is read strictly (stripe-node's parseInt would take 1700000000abc as 1700000000)", () => {
    const r = verifyRechargeWebhook(raw, { signature: `t=${T}abc,v1=${V1}` }, [SECRET], opts);
    assert.equal(!r.ok && r.reason, "malformed");
  });

  it("timestamped: a failing strong signature never falls back to a valid legacy one", () => {
    const r = verifyRechargeWebhook(raw, { signature: `t=${T},v1=${"0".repeat(64)}`, legacy: LEGACY }, [SECRET], opts);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.scheme, "timestamped");
    const expired = verifyRechargeWebhook(raw, { signature: `t=${T},v1=${V1}`, legacy: LEGACY }, [SECRET], { nowSeconds: T + 999_999, toleranceSeconds: 60 });
    assert.equal(!expired.ok && expired.reason, "expired");
    const garbled = verifyRechargeWebhook(raw, { signature: "garbage", legacy: LEGACY }, [SECRET], opts);
    assert.equal(!garbled.ok && garbled.reason, "malformed");
  });

  it("timestamped: the timestamp is part of what is signed, and the headers must agree", () => {
    const r = verifyRechargeWebhook(raw, { signature: `t=${T + 1},v1=${V1}` }, [SECRET], opts);
    assert.equal(!r.ok && r.reason, "mismatch");
    const disagree = verifyRechargeWebhook(raw, { signature: `t=${T},v1=${V1}`, timestamp: String(T + 5) }, [SECRET], opts);
    assert.equal(!disagree.ok && disagree.reason, "malformed");
  });
});
