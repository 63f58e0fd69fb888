import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { deliveryId } from "../../src/platforms/http/adapter.js";
import { startOmsStandIn } from "../helpers/oms-stand-in.js";
import { runToExit } from "../helpers/process.js";
import { rcFixtureText, startRechargeService } from "../helpers/recharge.js";
import { minimalOrder } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// Issue #14, item 7: PLATFORM_HTTP_SECRET is read as the official `standardwebhooks` library reads
// a key. The OMS stand-in verifies with that library, through the README's receiving example
// (test/fixtures/platform-http/receiver.ts), holding the same value as orderbridge.
const NON_ASCII_TEXT = "thé-vert-secret-€-0123456789";
const KEYS: { form: string; secret: string }[] = [
  { form: "whsec_<base64>", secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" },
  // Without the prefix the library decodes it all the same; orderbridge took such a key as text before.
  { form: "<base64> (no prefix)", secret: "C2FVsBQIhrscChlQIMV+b5sSYspob7oD" },
  { form: "raw:<ASCII text>", secret: "raw:oms-shared-secret-0123456789" },
  // A non-ASCII text key, written as the base64 of its UTF-8 bytes (what the refusal below advises).
  { form: "whsec_ of a non-ASCII text", secret: `whsec_${Buffer.from(NON_ASCII_TEXT, "utf8").toString("base64")}` },
];

for (const { kind, skip } of await storeKinds()) {
  describe(`PLATFORM=http signing keys [${kind}]`, { skip }, () => {
    for (const { form, secret } of KEYS) {
      it(`${form}: the official library verifies every request; Subscribe Pro gets 201 and the Recharge order is placed`, async () => {
        const oms = await startOmsStandIn({ secret, skus: ["RUBY-RED", "EARL-GREY"] });
        const t = await startRechargeService(kind, {
          env: { PLATFORM: "http", PLATFORM_HTTP_URL: `${oms.url}/orders`, PLATFORM_HTTP_SECRET: secret, PLATFORM_TIMEOUT_MS: "1000", PLATFORM_DEADLINE_MS: "3000" },
        });
        try {
          const res = await t.callback(minimalOrder("key-sp", [{ productSku: "RUBY-RED", qty: "2", subscription: { id: "sub-1" } }]));
          assert.equal(res.status, 201, res.text);
          assert.match(res.body.orderNumber, /^OMS-\d+$/);

          const hook = await t.webhook("order/created", rcFixtureText("2021-11", "order-created"));
          assert.equal(hook.status, 200);
          await t.settle();
          assert.equal((await t.job(hook.body.eventId)).state, "done");
          assert.ok(oms.orders.get(deliveryId("recharge:order:512340001")), "the Recharge order reached the OMS");

          assert.ok(oms.calls.length >= 2);
          assert.deepEqual(
            oms.calls.map((c) => ({ verified: c.verified, refused: c.refused })),
            oms.calls.map(() => ({ verified: true, refused: undefined })),
          );
          assert.equal(oms.orders.get(deliveryId("sp:key-sp"))?.request["idempotencyKey"], "sp:key-sp");
          assert.equal(
            t.logs.some((l) => l.includes(secret) || l.includes(secret.replace(/^(whsec_|raw:)/, ""))),
            false,
            "the key is in no log line",
          );
        } finally {
          await t.stop();
          await oms.close();
        }
      });
    }
  });
}

describe("PLATFORM=http: a key the library cannot use stops the start", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ob-http-key-"));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const refused: [string, string, RegExp][] = [
    ["16+ characters of text, as the README allowed before", "oms-secret-0123456789", /is not a Standard Webhooks key[\s\S]*raw:<the text>/],
    ["a non-ASCII text as raw:", `raw:${NON_ASCII_TEXT}`, /raw: key must be printable ASCII[\s\S]*whsec_ followed by the base64 of its UTF-8 bytes/],
    ["base64 of 12 bytes", "0123456789abcdef", /decodes to 12 bytes; at least 16 are needed/],
  ];
  for (const [what, secret, message] of refused) {
    it(`${what}: exit 78, the message says what to set, and the key is not shown`, async () => {
      const r = await runToExit({
        DATA_DIR: dataDir,
        SP_HMAC_SECRETS: "sp-secret-0123456789",
        PLATFORM: "http",
        PLATFORM_HTTP_URL: "http://127.0.0.1:9/orders",
        PLATFORM_HTTP_SECRET: secret,
      });
      assert.equal(r.code, 78, r.output);
      assert.match(r.output, /PLATFORM_HTTP_SECRET/);
      assert.match(r.output, message);
      assert.match(r.output, /openssl/);
      assert.equal(r.output.includes(secret), false, "the key is not shown");
      assert.equal(fs.readdirSync(dataDir).length, 0, "nothing was created");
    });
  }
});
