import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { entryId } from "../../src/subscribe-pro/callback-log.js";

// A callback log entry's id: cb_, the time received in base 36 (ids sort by time, the console
// pages by them) and 48 random bits as 12 hex digits, now taken from randomUUID's buffered bytes.
describe("callback log entry ids", () => {
  it("are cb_, the time in base 36 and 12 random hex digits", () => {
    const at = Date.UTC(2026, 11, 3, 7, 0, 0);
    const id = entryId(at);
    const m = /^cb_([0-9a-z]+)([0-9a-f]{12})$/.exec(id);
    assert.ok(m, id);
    assert.equal(m[1], at.toString(36));
  });

  it("do not repeat, and their random part uses every hex digit in every position", () => {
    const at = Date.now();
    const ids = Array.from({ length: 20_000 }, () => entryId(at));
    assert.equal(new Set(ids).size, ids.length);
    const tails = ids.map((id) => id.slice(-12));
    for (let pos = 0; pos < 12; pos++) {
      const seen = new Set(tails.map((t) => t[pos]));
      // A fixed UUID digit (the version, the variant) would show as one or four values here.
      assert.equal(seen.size, 16, `position ${pos} took only ${[...seen].join("")}`);
    }
  });

  it("sort by the time they were received", () => {
    const a = entryId(Date.UTC(2026, 0, 1));
    const b = entryId(Date.UTC(2026, 11, 31));
    assert.ok(a < b, `${a} < ${b}`);
  });
});
