import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

// Issue #14, item 8: known-answer signature vectors, sent through real HTTP with their header values
// exactly as written in the sources (never computed here), and the timestamp window at its edges.
// The secrets are the ones the test services use (RC_SECRET, SECRET), which the specs' examples chose.

// shared/spec/recharge-webhooks.md §5.1 (legacy) and §5.2 (timestamp-bound; its details unconfirmed).
const RC_BODY = '{"order":{"id":70071255,"status":"success","is_prepaid":false}}';
const RC_LEGACY = "9a7aae597db67c2d4ceb96a96bafaa6469f969deb8c5e5ae21cddc2a3524fd31";
const RC_WRONG_HMAC = "fe14bb9db06377fc278bd0d834ecbcd439aa149045f76002f5498431ecb2d316";
const RC_WRONG_SUFFIX = "4b1d29f548e4d957ab8bed90015662fd19a2c947a46d574bc662e705b0a18da5";
const RC_T = 1700000000;
const RC_V1 = "ae2eace9bb4a3250e2679cfb285398a9df8642bd605cff7679f4a6743652ee07";
const TOLERANCE = 172_800; // RECHARGE_SIGNATURE_TOLERANCE_S's default (48 h, Recharge's changelog)

// shared/spec/subscribe-pro-order-callback.md §5.1.
const SP_BODY = '{"customerId":"1234","salesOrderToken":"tok_abc123","items":[{"productSku":"RUBY-RED","qty":"4"}]}';
const SP_HMAC = "c1eee973314e62248ced85c26776ba7c67e5a753af4bb655c85ddfd3d8044aea";

for (const { kind, skip } of await storeKinds()) {
  describe(`peer signature vectors through HTTP [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    let nowMs = Date.now();
    before(async () => {
      t = await startRechargeService(kind, { startWorker: false, clock: () => nowMs });
    });
    after(() => t.stop());

    const rc = (headers: Record<string, string>) => {
      let req = request(t.app).post("/webhooks/recharge/order/created").set("Content-Type", "application/json");
      for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
      return req.send(RC_BODY).then((r) => r);
    };
    /** Past the signature: whatever the body's fate, it is not a 401. */
    const passed = (r: request.Response): boolean => r.status !== 401 && !/^signature_/.test(String(r.body.errorCode ?? ""));

    it("Recharge legacy (§5.1): the spec's digest is accepted; the two wrong constructions it names are refused", async () => {
      nowMs = Date.now();
      const ok = await rc({ "X-Recharge-Hmac-Sha256": RC_LEGACY });
      assert.ok(passed(ok), `${ok.status} ${ok.text}`);
      for (const wrong of [RC_WRONG_HMAC, RC_WRONG_SUFFIX]) {
        const r = await rc({ "X-Recharge-Hmac-Sha256": wrong });
        assert.equal(r.status, 401);
        assert.equal(r.body.errorCode, "signature_mismatch");
      }
    });

    it("Recharge timestamp-bound (§5.2): the spec's vector at its time; the window at its edges, both ways (unlike stripe-node, which never refuses a future timestamp)", async () => {
      const header = { "X-Recharge-Webhook-Signature": `t=${RC_T},v1=${RC_V1}` };
      // [seconds from the signature's t to now, accepted]: exactly the tolerance away is accepted,
      // as in stripe-node's `timestampAge > tolerance` (src/Webhooks.ts @ 663942164d3876f04bb26617b88f498ba785e580).
      const edges: [number, boolean][] = [
        [10, true],
        [TOLERANCE, true],
        [TOLERANCE + 1, false],
        [-TOLERANCE, true],
        [-(TOLERANCE + 1), false],
      ];
      for (const [age, accepted] of edges) {
        // A fraction of a second past the edge is still within it: now counts in whole seconds.
        nowMs = (RC_T + age) * 1000 + 999;
        const r = await rc(header);
        assert.equal(passed(r), accepted, `age ${age} s: ${r.status} ${r.text}`);
        if (!accepted) assert.match(r.body.errorMessage, /more than 172800 s away from now \(RECHARGE_SIGNATURE_TOLERANCE_S\)/);
      }
      nowMs = (RC_T + 10) * 1000;
      const tampered = await rc({ "X-Recharge-Webhook-Signature": `t=${RC_T + 1},v1=${RC_V1}` });
      assert.equal(tampered.body.errorCode, "signature_mismatch", "t is part of what is signed");
      // stripe-node reads t with parseInt ("1700000000abc" → 1700000000); here it is malformed.
      const lax = await rc({ "X-Recharge-Webhook-Signature": `t=${RC_T}abc,v1=${RC_V1}` });
      assert.equal(lax.body.errorCode, "signature_malformed");
      // stripe-node's "at least one valid signature" case: an extra v1 that does not match.
      const extra = await rc({ "X-Recharge-Webhook-Signature": `t=${RC_T},v1=${RC_V1},v1=${"0".repeat(64)}` });
      assert.ok(passed(extra), extra.text);
      // Expired and a valid legacy header beside it: no fall-back to the weaker scheme.
      nowMs = (RC_T + TOLERANCE + 1) * 1000;
      const noFallback = await rc({ ...header, "X-Recharge-Hmac-Sha256": RC_LEGACY });
      assert.equal(noFallback.status, 401);
    });

    it("Subscribe Pro Sp-Hmac (§5.1): the spec's digest is accepted; the same bytes under another digest are refused", async () => {
      nowMs = Date.now();
      const ok = await t.callback(SP_BODY, { secret: null, headers: { "Sp-Hmac": SP_HMAC } });
      assert.ok(passed(ok), `${ok.status} ${ok.text}`);
      const wrong = await t.callback(SP_BODY, { secret: null, headers: { "Sp-Hmac": SP_HMAC.replace(/^c1/, "c2") } });
      assert.equal(wrong.status, 401);
    });
  });
}
