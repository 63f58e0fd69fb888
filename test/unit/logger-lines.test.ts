import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import winston from "winston";
import { BatchedLines, isSensitiveKey, jsonLine } from "../../src/logger.js";

// The logger's line writing (src/logger.ts): JSON lines built with JSON.stringify (logform's json
// format built a serializer per line and sorted the keys), written to standard output once per turn
// of the event loop (BatchedLines) instead of once per line.

function capture(): { out: Writable; writes: string[] } {
  const writes: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString("utf8"));
      cb();
    },
  });
  return { out, writes };
}

describe("the logger's lines", () => {
  it("a turn's lines go out in one write, in order, after the turn; the next turn's in the next", async () => {
    const { out, writes } = capture();
    const transport = new BatchedLines(out);
    const log = winston.createLogger({
      level: "info",
      format: winston.format.combine(winston.format((i) => ((i[Symbol.for("message")] = jsonLine(i)), i))()),
      transports: [transport],
    });
    log.info("one", { n: 1 });
    log.info("two", { n: 2 });
    assert.equal(writes.length, 0, "nothing written during the turn");
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(writes.length, 1);
    assert.deepEqual(
      (writes[0] as string)
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { message: string; n: number }),
      [
        { level: "info", message: "one", n: 1 },
        { level: "info", message: "two", n: 2 },
      ],
    );
    log.info("three");
    transport.flush();
    assert.equal(writes.length, 2, "flush writes what is pending at once");
    transport.close();
  });

  it("what is pending when the process exits is written then", async () => {
    const { out, writes } = capture();
    const listeners = process.listenerCount("exit");
    const transport = new BatchedLines(out);
    assert.equal(process.listenerCount("exit"), listeners + 1);
    transport.log({ [Symbol.for("message")]: '{"message":"last words"}' }, () => undefined);
    process.emit("exit", 0);
    assert.deepEqual(writes, ['{"message":"last words"}\n']);
    transport.close();
    assert.equal(process.listenerCount("exit"), listeners, "closed: no longer listening");
  });

  it("fields in the order given (level and message first); a bigint or a cycle is written, not thrown", () => {
    assert.equal(jsonLine({ level: "info", message: "m", b: 1, a: 2 }), '{"level":"info","message":"m","b":1,"a":2}');
    const cyclic: Record<string, unknown> = { message: "c", n: 10n };
    cyclic["self"] = cyclic;
    assert.equal(jsonLine(cyclic), '{"message":"c","n":"10","self":"[Circular]"}');
  });

  it("a sensitive key is told alike the first time and from the cache; keys beyond the cache are still told", () => {
    for (let round = 0; round < 2; round++) {
      assert.equal(isSensitiveKey("cardNumber"), true);
      assert.equal(isSensitiveKey("salesOrderToken"), false);
      assert.equal(isSensitiveKey("discard"), false);
      assert.equal(isSensitiveKey("X-Api-Key"), true);
    }
    for (let i = 0; i < 5000; i++) assert.equal(isSensitiveKey(`field${i}`), false);
    assert.equal(isSensitiveKey(`${"x".repeat(100)}_token`), true, "a long key, not cached, still told");
    assert.equal(isSensitiveKey("paymentToken9999"), true, "after the cache is full");
  });
});
