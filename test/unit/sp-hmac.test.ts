import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { signSpHmac, verifySpHmac } from "../../src/security/sp-hmac.js";

// Known-answer vectors: shared/spec/subscribe-pro-order-callback.md §5.1.
const SECRET = "sp_shared_secret_example";
const COMPACT = '{"customerId":"1234","salesOrderToken":"tok_abc123","items":[{"productSku":"RUBY-RED","qty":"4"}]}';
const COMPACT_SIG = "c1eee973314e62248ced85c26776ba7c67e5a753af4bb655c85ddfd3d8044aea";
// §5.1 also quotes a digest for "the body pretty-printed", but not its exact bytes (no 2/4-space,
// tab or CRLF layout reproduces it), so it cannot pin anything; pretty bodies are checked against
// WebCrypto below instead.
const PRETTY = JSON.stringify(JSON.parse(COMPACT), null, 2);
const PRETTY_SIG = "0d81393a5eb3f3c1ee13cea2c7bcab367faa1170a0d40198cb6c69d74628e215";

/** The same HMAC through WebCrypto: an independent code path. */
async function webCryptoHmac(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return Buffer.from(sig).toString("hex");
}

// stripe-node test/crypto/helpers.ts @ 663942164d3876f04bb26617b88f498ba785e580: the same primitive
// (lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 text), its known answers.
const STRIPE_SECRET = "test_secret";
const STRIPE_VECTORS: [string, string, string][] = [
  ["empty payload", "", "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd"],
  ["sample payload", JSON.stringify({ obj1: "hello", obj2: "world" }), "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363"],
  ["payload with utf-8", "\ud83d\ude00", "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43"],
];

describe("Sp-Hmac", () => {
  it("signs stripe-node's HMAC-SHA256 known answers, from text and from the UTF-8 bytes", () => {
    for (const [what, payload, expected] of STRIPE_VECTORS) {
      assert.equal(signSpHmac(STRIPE_SECRET, payload), expected, what);
      assert.equal(signSpHmac(STRIPE_SECRET, Buffer.from(payload, "utf8")), expected, what);
      assert.deepEqual(verifySpHmac(Buffer.from(payload, "utf8"), expected, [STRIPE_SECRET]), { ok: true, secretIndex: 0 }, what);
    }
  });

  it("signs the spec's known-answer vector", () => {
    assert.equal(signSpHmac(SECRET, COMPACT), COMPACT_SIG);
    assert.equal(signSpHmac(SECRET, Buffer.from(COMPACT, "utf8")), COMPACT_SIG);
  });

  it("gives the pretty-printed body its own signature", async () => {
    assert.equal(signSpHmac(SECRET, PRETTY), PRETTY_SIG);
    assert.equal(await webCryptoHmac(SECRET, PRETTY), PRETTY_SIG);
  });

  it("agrees with an independent WebCrypto computation, including non-ASCII and escaped slashes", async () => {
    for (const body of [COMPACT, PRETTY, '{"name":"Thé vert — 緑茶","url":"https:\\/\\/example.com\\/x"}']) {
      assert.equal(signSpHmac(SECRET, Buffer.from(body, "utf8")), await webCryptoHmac(SECRET, body));
    }
  });

  it("verifies the raw bytes, not a re-serialisation", () => {
    assert.deepEqual(verifySpHmac(Buffer.from(PRETTY), PRETTY_SIG, [SECRET]), { ok: true, secretIndex: 0 });
    // The re-serialising approach of the vendor's Node example would check COMPACT_SIG against the pretty body.
    assert.deepEqual(verifySpHmac(Buffer.from(PRETTY), COMPACT_SIG, [SECRET]), { ok: false, reason: "mismatch" });
  });

  it("accepts upper-case hex and any of several secrets (rotation)", () => {
    assert.deepEqual(verifySpHmac(Buffer.from(COMPACT), COMPACT_SIG.toUpperCase(), ["old", SECRET]), { ok: true, secretIndex: 1 });
  });

  it("rejects missing, malformed and wrong signatures with the reason", () => {
    const raw = Buffer.from(COMPACT);
    assert.deepEqual(verifySpHmac(raw, undefined, [SECRET]), { ok: false, reason: "missing" });
    assert.deepEqual(verifySpHmac(raw, "  ", [SECRET]), { ok: false, reason: "missing" });
    assert.deepEqual(verifySpHmac(raw, "abc", [SECRET]), { ok: false, reason: "malformed" });
    assert.deepEqual(verifySpHmac(raw, `${COMPACT_SIG}, ${COMPACT_SIG}`, [SECRET]), { ok: false, reason: "malformed" });
    assert.deepEqual(verifySpHmac(raw, "0".repeat(64), [SECRET]), { ok: false, reason: "mismatch" });
    assert.deepEqual(verifySpHmac(raw, COMPACT_SIG, []), { ok: false, reason: "mismatch" });
    assert.deepEqual(verifySpHmac(Buffer.from(COMPACT + " "), COMPACT_SIG, [SECRET]), { ok: false, reason: "mismatch" });
  });
});
