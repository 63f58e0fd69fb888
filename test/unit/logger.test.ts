import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { createLogger } from "../../src/logger.js";

describe("logger", () => {
  it("redacts secrets, signatures and payment data at any depth, but keeps the order token", async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on("data", (d: Buffer) => lines.push(d.toString("utf8")));
    const log = createLogger({ level: "info", format: "json", stream });
    log.info("x", {
      salesOrderToken: "tok_visible",
      spHmac: "deadbeef",
      payment: { paymentToken: "pm_1" },
      nested: { clientSecret: "s3cr3t", list: [{ authorization: "Bearer abc" }] },
    });
    await new Promise((r) => setImmediate(r));
    const entry = JSON.parse(lines.join("")) as Record<string, unknown>;
    assert.equal(entry["salesOrderToken"], "tok_visible");
    assert.equal(entry["spHmac"], "[redacted]");
    assert.equal(entry["payment"], "[redacted]");
    assert.deepEqual(entry["nested"], { clientSecret: "[redacted]", list: [{ authorization: "[redacted]" }] });
    assert.doesNotMatch(lines.join(""), /deadbeef|pm_1|s3cr3t|Bearer abc/);
  });

  it("a secret nested deeper than the walker looks never reaches the line: the deep part is cut off, not passed through", async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on("data", (d: Buffer) => lines.push(d.toString("utf8")));
    const log = createLogger({ level: "info", format: "json", stream });
    let deep: Record<string, unknown> = { apiKey: "deep-secret-value" };
    for (let i = 0; i < 12; i++) deep = { level: deep };
    log.info("deep", { error: { detail: deep }, shallow: { a: { b: { token: "t-shallow" } } } });
    await new Promise((r) => setImmediate(r));
    const text = lines.join("");
    assert.doesNotMatch(text, /deep-secret-value|t-shallow/);
    assert.match(text, /\[nested too deep\]/);
    assert.deepEqual((JSON.parse(text) as { shallow: unknown }).shallow, { a: { b: { token: "[redacted]" } } });
  });

  it("matches sensitive key names by whole words: cardNumber and card_number are redacted, discard and cardinality are not", async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on("data", (d: Buffer) => lines.push(d.toString("utf8")));
    const log = createLogger({ level: "info", format: "json", stream });
    const redacted = [
      "card",
      "cardNumber",
      "card_number",
      "card-number",
      "CARD_NUMBER",
      "creditCard",
      "cards",
      "apiKey",
      "api_key",
      "X-Api-Key",
      "apikey",
      "set-cookie",
      "SP_HMAC_SECRETS",
      "clientSecrets",
      "passwd",
      "cvv",
      "authorization",
      "paymentProfileId",
      "accessToken",
      "signatures",
      "x.password",
    ];
    const kept = ["discard", "discarded", "cardinality", "tokenizer", "secretary", "passwordless", "keyboard", "apiVersion", "discardedCards"];
    log.info("keys", { fields: Object.fromEntries([...redacted, ...kept].map((k) => [k, `value-of-${k}`])) });
    await new Promise((r) => setImmediate(r));
    const fields = (JSON.parse(lines.join("")) as { fields: Record<string, string> }).fields;
    for (const k of redacted) assert.equal(fields[k], "[redacted]", k);
    for (const k of kept.slice(0, -1)) assert.equal(fields[k], `value-of-${k}`, k);
    // "discarded" + "cards": a word of its own, so redacted (whole words, not substrings, either way).
    assert.equal(fields["discardedCards"], "[redacted]");
  });
});
