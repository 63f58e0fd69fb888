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
});
