import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffMs, classifyHttpStatus, gcraPenalize, gcraReserve, gcraTryReserve, gcraWait, parseRetryAfter } from "../../src/outbound/retry-policy.js";

describe("retry policy", () => {
  it("backs off exponentially with jitter between half and all of the step, capped", () => {
    const o = { baseMs: 1000, maxMs: 30_000 };
    assert.equal(
      backoffMs(1, o, () => 0),
      500,
    );
    assert.equal(
      backoffMs(1, o, () => 1),
      1000,
    );
    assert.equal(
      backoffMs(3, o, () => 1),
      4000,
    );
    assert.equal(
      backoffMs(3, o, () => 0),
      2000,
    );
    assert.equal(
      backoffMs(10, o, () => 1),
      30_000,
    );
    assert.equal(
      backoffMs(500, o, () => 0.5),
      22_500,
    );
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

  it("GCRA: a slot further away than the caller will wait is not taken, so deferring never moves the bucket (issue 13)", () => {
    const r = { burst: 3, perSecond: 2 };
    let tat = 0;
    // The burst, then the next slot is 500 ms away.
    for (let i = 0; i < 3; i++) {
      const g = gcraTryReserve(tat, 10_000, r, 0);
      assert.ok(g.granted);
      tat = g.tat;
    }
    assert.equal(gcraWait(tat, 10_000, r), 500);
    const refused = gcraTryReserve(tat, 10_000, r, 100);
    assert.deepEqual(refused, { granted: false, waitMs: 500 });
    // Any number of callers refused in a row: the next slot is still 500 ms away, not further.
    for (let i = 0; i < 100; i++) assert.equal(gcraTryReserve(tat, 10_000, r, 100).granted, false);
    assert.equal(gcraWait(tat, 10_000, r), 500);
    const later = gcraTryReserve(tat, 10_500, r, 0);
    assert.ok(later.granted);
    assert.equal(later.waitMs, 0);
  });

  it("GCRA: loops that only take slots they use send at the configured rate, however many there are", () => {
    // 50 loops, each asking every 10 ms and taking only a slot within 20 ms, for 60 s of clock.
    const r = { burst: 10, perSecond: 2 };
    let tat = 0;
    const sends: number[] = [];
    for (let now = 0; now < 60_000; now += 10) {
      for (let loop = 0; loop < 50; loop++) {
        const g = gcraTryReserve(tat, now, r, 20);
        if (!g.granted) continue;
        tat = g.tat;
        sends.push(now + g.waitMs);
        // A granted slot is never further ahead than the burst allows.
        assert.ok(tat - now <= r.burst * 500 + 20);
      }
    }
    assert.equal(sends.length, 10 + Math.floor((60_000 - 500) / 500) + 1);
  });
});
