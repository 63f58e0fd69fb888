import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it, mock } from "node:test";
import { Webhook } from "standardwebhooks";
import { MIN_SIGNING_KEY_BYTES, parseSigningKey, type StandardWebhookKey } from "../../src/security/standard-webhooks.js";

// Test vectors (inputs and expected signatures) copied from the reference libraries' own tests:
// - standard-webhooks/standard-webhooks @ b2fa7b8719fb75d326b591077f5d1b385cfcdfae,
//   libraries/javascript/src/webhook.test.ts ("sign function works"; also svix/svix-webhooks
//   javascript/src/webhook.test.ts and go/webhook_test.go @ 4fc0cfb8b426c87ef7e2b937e7d896a71d456a47)
//   and libraries/rust/src/lib.rs (test_sign);
// - svix/svix-webhooks @ 4fc0cfb8b426c87ef7e2b937e7d896a71d456a47, csharp/Svix.Tests/WebhookTest.cs
//   (VerifyWebhookSignWithLargePayloadWorks: a body of n × "a").
const VECTORS = [
  {
    source: "standard-webhooks libraries/javascript/src/webhook.test.ts",
    key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ts: 1614265330,
    body: '{"test": 2432232314}',
    expected: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  },
  {
    source: "standard-webhooks libraries/rust/src/lib.rs",
    key: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
    ts: 1649367553,
    body: '{"email":"test@example.com","username":"test_user"}',
    expected: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
  },
  ...(
    [
      [1024 * 1024, "v1,txpEUxqWZJ5nteTnymUVa+7C4NHpBeXJ6CsBAW0c3/A="],
      [256 * 1024, "v1,Mw4Pe2WgApuT7NSqnSq0PQPV9gbLdggCl9B865x5Xh0="],
      [256 * 1024 - 1, "v1,NTItnqyWMoFhk2Bbe5V/BMdcFRWgcSQaTgqLHX7FC7c="],
    ] as const
  ).map(([n, expected]) => ({
    source: `svix csharp/Svix.Tests/WebhookTest.cs (${n} bytes)`,
    key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ts: 1614265330,
    body: "a".repeat(n),
    expected,
  })),
];
// The official tests' key without its prefix ("verification works with and without signature prefix").
const DEFAULT_SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

function key(value: string): StandardWebhookKey {
  const r = parseSigningKey(value);
  assert.ok(r.ok, `accepted: ${r.ok ? "" : r.problem}`);
  return r.key;
}

/** The receiving side at `ts`: the official library checks the timestamp against Date.now(). */
function verifiesAt(wh: Webhook, ts: number, id: string, body: string, signature: string): boolean {
  mock.timers.enable({ apis: ["Date"], now: ts * 1000 });
  try {
    wh.verify(body, { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": signature }, { jsonParse: false });
    return true;
  } catch {
    return false;
  } finally {
    mock.timers.reset();
  }
}

/** An independent computation of the signature from the key's bytes. */
const hmac = (keyBytes: Buffer, id: string, ts: number, body: string): string => `v1,${createHmac("sha256", keyBytes).update(`${id}.${ts}.${body}`, "utf8").digest("base64")}`;

describe("Standard Webhooks signatures (PLATFORM=http)", () => {
  it("sign the reference libraries' vectors byte for byte, with the whsec_ prefix and without it", () => {
    for (const v of VECTORS) {
      assert.equal(key(v.key).sign(v.id, v.ts, v.body), v.expected, v.source);
      assert.equal(key(v.key.slice("whsec_".length)).sign(v.id, v.ts, v.body), v.expected, `${v.source}, without whsec_`);
      assert.equal(verifiesAt(new Webhook(v.key), v.ts, v.id, v.body, v.expected), true, `the official library verifies ${v.source}`);
    }
  });

  it('the official test "verification works with and without signature prefix", against our signatures', () => {
    const now = Math.floor(Date.now() / 1000);
    const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const body = '{"test": 2432232314}';
    for (const ours of [DEFAULT_SECRET, `whsec_${DEFAULT_SECRET}`]) {
      const signature = key(ours).sign(id, now, body);
      for (const theirs of [DEFAULT_SECRET, `whsec_${DEFAULT_SECRET}`]) {
        const headers = { "webhook-id": id, "webhook-timestamp": String(now), "webhook-signature": signature };
        assert.doesNotThrow(() => new Webhook(theirs).verify(body, headers), `signed with ${ours}, verified with ${theirs}`);
      }
    }
  });

  it("raw:<ASCII text>: the text's bytes, as the library's raw format takes them (as a string or as bytes), and as orderbridge signed text before", () => {
    const text = "plain-ascii shared secret 42";
    const v = VECTORS[1] as (typeof VECTORS)[number];
    const signature = key(`raw:${text}`).sign(v.id, v.ts, v.body);
    assert.equal(signature, hmac(Buffer.from(text, "utf8"), v.id, v.ts, v.body), "the UTF-8 bytes of the text, as before");
    assert.equal(verifiesAt(new Webhook(text, { format: "raw" }), v.ts, v.id, v.body, signature), true);
    assert.equal(verifiesAt(new Webhook(new TextEncoder().encode(text), { format: "raw" }), v.ts, v.id, v.body, signature), true);
    assert.equal(verifiesAt(new Webhook(`raw:${text}`, { format: "raw" }), v.ts, v.id, v.body, signature), false, "the prefix is not part of the key");
  });

  it("a non-ASCII text key is refused as raw: the library's raw format and UTF-8 disagree; as whsec_ + base64 of its UTF-8 bytes it signs as it did before", () => {
    const text = "thé-vert-secret-€-0123456789";
    const v = VECTORS[0] as (typeof VECTORS)[number];
    // Why: the JavaScript library keeps one byte per character of a raw string key, others take UTF-8.
    const utf8 = hmac(Buffer.from(text, "utf8"), v.id, v.ts, v.body);
    assert.equal(verifiesAt(new Webhook(text, { format: "raw" }), v.ts, v.id, v.body, utf8), false);

    const raw = parseSigningKey(`raw:${text}`);
    assert.equal(raw.ok, false);
    assert.match(raw.ok ? "" : raw.problem, /printable ASCII[\s\S]*whsec_ followed by the base64 of its UTF-8 bytes/);
    assert.equal((raw.ok ? "" : raw.problem).includes(text), false, "the key is never quoted");

    const whsec = `whsec_${Buffer.from(text, "utf8").toString("base64")}`;
    const signature = key(whsec).sign(v.id, v.ts, v.body);
    assert.equal(signature, utf8, "the same signature orderbridge made from this text before");
    assert.equal(verifiesAt(new Webhook(whsec), v.ts, v.id, v.body, signature), true);
  });

  it("refuses, without quoting it, every key that Standard Webhooks libraries cannot use or would read differently", () => {
    const b64 = (n: number): string => Buffer.alloc(n, 7).toString("base64");
    const cases: [string, RegExp, string][] = [
      ["my-shared-secret-2024", /without a prefix it must be standard base64[\s\S]*raw:<the text>/, "text: not base64 (the library throws)"],
      ["whsec_my-shared-secret-2024", /what follows whsec_ must be standard base64/, "whsec_ with text"],
      ["whsec_", /what follows whsec_ must be standard base64/, "whsec_ alone (the library: empty)"],
      [b64(24).replace(/\+/g, "-").replace(/\//g, "_") + "-_", /standard base64/, "URL-safe alphabet (the library throws)"],
      [b64(32).replace(/=+$/, ""), /padded with =/, "unpadded (Go and Rust refuse it)"],
      ["abcdefghijklmnopqrstuvwxy", /standard base64/, "a 25th character the library silently drops"],
      ["QR" + b64(24).slice(2, -2) + "R=", /standard base64/, "stray padding bits (Rust refuses them)"],
      [`${b64(12)} ${b64(12)}`, /standard base64/, "a space inside"],
      ["abcdefghijklmnop", /decodes to 12 bytes; at least 16/, "valid base64, 12 bytes"],
      [`whsec_${b64(15)}`, /decodes to 15 bytes; at least 16/, "whsec_, 15 bytes"],
      ["raw:fifteen chars", /raw: key needs at least 16 characters \(it has 13\)/, "raw:, too short"],
      ["raw:tab\there-0123456789", /printable ASCII/, "raw: with a control character"],
    ];
    for (const [value, problem, what] of cases) {
      const r = parseSigningKey(value);
      assert.equal(r.ok, false, what);
      if (r.ok) continue;
      assert.match(r.problem, /^PLATFORM_HTTP_SECRET/, what);
      assert.match(r.problem, problem, what);
      if (value !== "whsec_") assert.equal(r.problem.includes(value), false, `${what}: the key is not quoted`);
    }
  });

  it("accepts each form at the minimum and says which it is", () => {
    const sixteen = Buffer.alloc(MIN_SIGNING_KEY_BYTES, 1).toString("base64");
    assert.deepEqual(
      [`whsec_${sixteen}`, sixteen, "raw:0123456789abcdef"].map((v) => ({ format: key(v).format, bytes: key(v).bytes })),
      [
        { format: "whsec", bytes: 16 },
        { format: "base64", bytes: 16 },
        { format: "raw", bytes: 16 },
      ],
    );
    assert.deepEqual(key(`whsec_${sixteen}`).forms, [`whsec_${sixteen}`, sixteen], "both texts a receiver may hold are scrubbed");
    assert.deepEqual(key("raw:0123456789abcdef").forms, ["raw:0123456789abcdef", "0123456789abcdef"]);
  });
});
