import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import { createHttpClient, OutboundFailure } from "../../src/outbound/http-client.js";
import { retrying } from "../../src/outbound/retry.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";

// src/outbound/http-client.ts, the one client of every adapter, the Recharge client and the CLI
// (issue #15, item 3), against real loopback servers.

async function withServer<T>(handler: http.RequestListener, fn: (url: string) => Promise<T>): Promise<T> {
  const server = http.createServer(handler);
  const url = await listen(server);
  try {
    return await fn(url);
  } finally {
    server.closeAllConnections();
    await close(server);
  }
}

const failure = async (p: Promise<unknown>): Promise<OutboundFailure> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OutboundFailure, String(e));
    return e;
  }
  assert.fail("resolved");
};

describe("the outbound HTTP client", () => {
  it("sends the exact bytes and resolves any status with the whole answer and lower-case headers", async () => {
    let got: Buffer | undefined;
    await withServer(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          got = Buffer.concat(chunks);
          res.writeHead(503, { "Retry-After": "2", "X-Request-Id": "r-1" }).end("down for now");
        });
      },
      async (url) => {
        const body = ' \n{"a": "b"}\n ';
        const res = await createHttpClient({ timeoutMs: 5000 }).request({ method: "POST", url, body, headers: { "Content-Type": "application/json" } });
        assert.equal(got?.toString("utf8"), body, "no trimming, no re-serialising");
        assert.equal(res.status, 503);
        assert.equal(res.text, "down for now");
        assert.equal(res.headers["retry-after"], "2");
        assert.equal(res.headers["x-request-id"], "r-1");
      },
    );
  });

  it("one deadline covers the whole answer: a server that trickles its answer times out", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "Content-Type": "text/plain" });
        const timer = setInterval(() => res.write("."), 20);
        res.on("close", () => clearInterval(timer));
      },
      async (url) => {
        const f = await failure(createHttpClient({ timeoutMs: 300 }).request({ method: "GET", url }));
        assert.equal(f.kind, "timeout");
        assert.equal(f.message, "no answer within 300 ms");
        assert.equal(f.mayHaveArrived, true);
      },
    );
  });

  it("refuses an answer over the size limit, says a refused connection never arrived, and tells the caller's cancel apart", async () => {
    await withServer(
      (_req, res) => res.end("x".repeat(2048)),
      async (url) => {
        const f = await failure(createHttpClient({ timeoutMs: 5000, maxAnswerBytes: 1024 }).request({ method: "GET", url }));
        assert.equal(f.kind, "too-large");
        assert.equal(f.message, "the answer is larger than 1024 bytes");
      },
    );
    const gone = http.createServer();
    const url = await listen(gone);
    await close(gone);
    const refused = await failure(createHttpClient({ timeoutMs: 5000 }).request({ method: "GET", url }));
    assert.equal(refused.kind, "connect");
    assert.equal(refused.mayHaveArrived, false);
    assert.match(refused.message, /ECONNREFUSED/);

    await withServer(
      () => undefined,
      async (url) => {
        const ac = new AbortController();
        const pending = createHttpClient({ timeoutMs: 60_000 }).request({ method: "GET", url, signal: ac.signal });
        setImmediate(() => ac.abort());
        assert.equal((await failure(pending)).kind, "aborted");
      },
    );
  });

  it("never shows its credentials in a failure's message", async () => {
    const token = "tok_secret_value_123";
    const f = await failure(createHttpClient({ timeoutMs: 5000, secrets: [token] }).request({ method: "GET", url: `http://${token}.invalid/` }));
    assert.doesNotMatch(f.message, /tok_secret_value_123/);
    assert.match(f.message, /\[redacted\]/);
  });
});

describe("the outbound retry loop", () => {
  it("retries until done, waiting what an attempt asks (again: at once), and ends a wait at the deadline with the caller's error", async () => {
    const waits: number[] = [];
    const result = await retrying<string>({
      signal: new AbortController().signal,
      backoff: { baseMs: 1, maxMs: 2 },
      maxWaitMs: 5,
      attempt: async (n) => (n === 1 ? { again: true as const } : n === 2 ? { failure: "second", waitMs: 60_000 } : n === 3 ? { failure: "third" } : { done: `after ${n}` }),
      onRetry: (r) => waits.push(r.waitMs),
      giveUp: () => new Error("gave up"),
      random: () => 1,
    });
    assert.equal(result, "after 4");
    assert.deepEqual(waits, [5, 2], "again sleeps not at all; a long hint is capped; the default is the backoff (3rd failure: 2 ms)");

    const ac = new AbortController();
    const seen: number[] = [];
    const gaveUp = retrying<string>({
      signal: ac.signal,
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      attempt: async (n) => {
        seen.push(n);
        setImmediate(() => ac.abort());
        return { failure: "down" };
      },
      giveUp: ({ attempts, failure }) => new Error(`${failure} after ${attempts}`),
    });
    await assert.rejects(gaveUp, /^Error: down after 1$/);
    assert.deepEqual(seen, [1]);
  });
});
