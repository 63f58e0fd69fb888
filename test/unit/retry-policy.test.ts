import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffMs, classifyHttpStatus, gcraPenalize, gcraReserve, parseRetryAfter } from "../../src/jobs/retry-policy.js";

describe("retry policy", () => {
  it("backs off exponentially with jitter between half and all of the step, capped", () => {
    const o = { baseMs: 1000, maxMs: 30_000 };
    assert.equal(backoffMs(1, o, () => 0), 500);
    assert.equal(backoffMs(1, o, () => 1), 1000);
    assert.equal(backoffMs(3, o, () => 1), 4000);
    assert.equal(backoffMs(3, o, () => 0), 2000);
    assert.equal(backoffMs(10, o, () => 1), 30_000);
    assert.equal(backoffMs(500, o, () => 0.5), 22_500);
  });

  it("retries network errors, 408, 409, 429 and 5xx; other 4xx are dead at once", () => {
    assert.equal(classifyHttpStatus(undefined), "retry");
    for (const s of [408, 409, 429, 500, 502, 503, 504]) assert.equal(classifyHttpStatus(s), "retry", String(s));
    for (const s of [400, 401, 403, 404, 405, 415, 422, 426]) assert.equal(classifyHttpStatus(s), "dead", String(s));
    for (const s of [200, 201, 204]) assert.equal(classifyHttpStatus(s), "ok");
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2024-05-01T14:00:00Z");
    assert.equal(parseRetryAfter("3", now), 3000);
    assert.equal(parseRetryAfter("0.5", now), 500);
    assert.equal(parseRetryAfter("Wed, 01 May 2024 14:00:10 GMT", now), 10_000);
    assert.equal(parseRetryAfter("Wed, 01 May 2024 13:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter("soon", now), undefined);
  });

  it("GCRA: a burst at once, then one slot per interval, like a 40/2s leaky bucket", () => {
    const r = { burst: 40, perSecond: 2 };
    let tat = 0;
    const waits: number[] = [];
    for (let i = 0; i < 43; i++) {
      const res = gcraReserve(tat, 10_000, r);
      tat = res.tat;
      waits.push(res.waitMs);
    }
    assert.deepEqual(waits.slice(0, 40), new Array(40).fill(0));
    assert.deepEqual(waits.slice(40), [500, 1000, 1500]);
    // After a quiet minute the bucket is empty again.
    assert.equal(gcraReserve(tat, 80_000, r).waitMs, 0);
  });

  it("GCRA: a 429 makes the next slot wait an interval, or Retry-After", () => {
    const r = { burst: 40, perSecond: 2 };
    assert.equal(gcraReserve(gcraPenalize(0, 1000, r, undefined), 1000, r).waitMs, 500);
    assert.equal(gcraReserve(gcraPenalize(0, 1000, r, 7000), 1000, r).waitMs, 7000);
  });
});
