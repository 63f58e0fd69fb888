import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, it } from "node:test";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";

// Authentication is independent of the store: these run on SQLite. Supertest connects from
// 127.0.0.1, which Node reports as ::ffff:127.0.0.1 on a dual-stack socket.
const body = (n: string) => minimalOrder(`auth-${n}`);

const services: TestService[] = [];
const servers: http.Server[] = [];
async function service(env: Record<string, string>): Promise<TestService> {
  const t = await startService("sqlite", { env });
  services.push(t);
  return t;
}
after(async () => {
  for (const s of servers) await close(s);
  for (const t of services) await t.stop();
});

describe("Subscribe Pro authentication modes", () => {
  it("hmac (default): any configured secret verifies (rotation)", async () => {
    const t = await service({ SP_HMAC_SECRETS: "new-secret,old-secret" });
    assert.equal((await t.callback(body("rot1"), { secret: "old-secret" })).status, 201);
    assert.equal((await t.callback(body("rot2"), { secret: "new-secret" })).status, 201);
    assert.equal((await t.callback(body("rot3"), { secret: "other" })).status, 401);
  });

  it("ip: allowed addresses need no signature; others get 403 and nothing is stored", async () => {
    const ok = await service({ SP_AUTH: "ip", SP_ALLOWED_IPS: "127.0.0.1" });
    assert.equal((await ok.callback(body("ip1"), { secret: null })).status, 201);

    const denied = await service({ SP_AUTH: "ip", SP_ALLOWED_IPS: "10.0.0.0/8, 2001:db8::/32" });
    const res = await denied.callback(body("ip2"));
    assert.equal(res.status, 403);
    assert.equal(res.body.errorCode, "address_not_allowed");
    assert.equal(res.body.errorClass, "Technology");
    assert.match(res.body.errorMessage, /127\.0\.0\.1.*not allowed/);
    assert.equal(await denied.count("sp_callbacks"), 0);
  });

  it("a forged X-Forwarded-For never gets through", async () => {
    const noProxy = await service({ SP_AUTH: "ip", SP_ALLOWED_IPS: "10.0.0.0/8" });
    assert.equal((await noProxy.callback(body("xff1"), { headers: { "X-Forwarded-For": "10.1.2.3" } })).status, 403);

    const behindProxy = await service({ SP_AUTH: "ip", SP_ALLOWED_IPS: "10.0.0.0/8", TRUST_PROXY: "loopback" });
    assert.equal((await behindProxy.callback(body("xff2"), { secret: null, headers: { "X-Forwarded-For": "10.1.2.3" } })).status, 201);
    assert.equal((await behindProxy.callback(body("xff3"), { headers: { "X-Forwarded-For": "8.8.8.8" } })).status, 403);
    // The client forged the first hop; the trusted proxy appended the real one.
    assert.equal((await behindProxy.callback(body("xff4"), { headers: { "X-Forwarded-For": "10.1.2.3, 8.8.8.8" } })).status, 403);
  });

  it("both: the address and the signature must pass", async () => {
    const t = await service({ SP_AUTH: "both", SP_ALLOWED_IPS: "127.0.0.0/8" });
    assert.equal((await t.callback(body("both1"))).status, 201);
    assert.equal((await t.callback(body("both2"), { secret: null })).status, 401);
    const other = await service({ SP_AUTH: "both", SP_ALLOWED_IPS: "192.0.2.0/24" });
    assert.equal((await other.callback(body("both3"))).status, 403);
  });

  it("either: an allowed address or a valid signature suffices", async () => {
    const t = await service({ SP_AUTH: "either", SP_ALLOWED_IPS: "127.0.0.1" });
    assert.equal((await t.callback(body("either1"), { secret: null })).status, 201);
    const other = await service({ SP_AUTH: "either", SP_ALLOWED_IPS: "192.0.2.0/24" });
    assert.equal((await other.callback(body("either2"))).status, 201);
    assert.equal((await other.callback(body("either3"), { secret: null })).status, 401);
  });
});

// Behind proxies, with real connections from distinct loopback addresses (Linux routes all of
// 127.0.0.0/8 to this host): one address plays the proxy, another an attacker who connects
// directly, and X-Forwarded-For carries what each of them claims. Unsigned requests, so a 201
// means the allowlist alone let the request through.
const SP = "203.0.113.7"; // Subscribe Pro's address, the one allowed
const REAL = "198.51.100.9"; // where an attacker really is
const ATTACKER = "127.0.0.3"; // an attacker reaching orderbridge directly

let n = 0;
/** POSTs an unsigned order callback from `from` to the service listening on `port`. */
function send(port: number, from: string, xff?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const raw = JSON.stringify(minimalOrder(`proxy-${++n}`));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        localAddress: from,
        method: "POST",
        path: "/callbacks/subscribe-pro/order",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(raw), ...(xff === undefined ? {} : { "X-Forwarded-For": xff }) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown> }));
      },
    );
    req.on("error", reject);
    req.end(raw);
  });
}

/** The service with these settings, listening on 127.0.0.1 (port 0) for real connections. */
async function behind(env: Record<string, string>): Promise<{ port: number }> {
  const t = await service({ SP_AUTH: "ip", ...env });
  const server = http.createServer(t.app);
  servers.push(server);
  return { port: Number(new URL(await listen(server)).port) };
}

describe("TRUST_PROXY with the allowlist: forged X-Forwarded-For from real, distinct addresses", () => {
  it("unset (no proxy): the socket address is the client; X-Forwarded-For is ignored either way", async () => {
    const { port } = await behind({ SP_ALLOWED_IPS: `${SP}, 127.0.0.4` });
    const forged = await send(port, ATTACKER, SP);
    assert.equal(forged.status, 403);
    assert.match(String(forged.body["errorMessage"]), /Requests from 127\.0\.0\.3 are not allowed/);
    assert.equal((await send(port, "127.0.0.4", "8.8.8.8")).status, 201, "an allowed socket address passes whatever the header says");
  });

  it("one proxy (TRUST_PROXY=<its address>): the address it appends is the client; a forged first entry and a direct connection are refused", async () => {
    const { port } = await behind({ SP_ALLOWED_IPS: SP, TRUST_PROXY: "127.0.0.2" });
    const proxy = "127.0.0.2";
    assert.equal((await send(port, proxy, SP)).status, 201, "Subscribe Pro through the proxy");
    // The attacker wrote the allowed address; the proxy appended where the attacker really is.
    const prefixed = await send(port, proxy, `${SP}, ${REAL}`);
    assert.equal(prefixed.status, 403);
    assert.match(String(prefixed.body["errorMessage"]), /Requests from 198\.51\.100\.9 are not allowed/);
    const direct = await send(port, ATTACKER, SP);
    assert.equal(direct.status, 403, "a direct connection's X-Forwarded-For is not believed");
    assert.match(String(direct.body["errorMessage"]), /Requests from 127\.0\.0\.3/);
    assert.equal((await send(port, proxy)).status, 403, "the proxy itself is not allowed");
  });

  for (const trustProxy of ["127.0.0.5, 127.0.0.6", "127.0.0.4/30"]) {
    it(`two proxies, a CDN (127.0.0.5) then nginx (127.0.0.6), as TRUST_PROXY=${trustProxy}: only the address the CDN saw counts`, async () => {
      const { port } = await behind({ SP_ALLOWED_IPS: SP, TRUST_PROXY: trustProxy });
      const nginx = "127.0.0.6";
      assert.equal((await send(port, nginx, `${SP}, 127.0.0.5`)).status, 201, "Subscribe Pro → CDN → nginx");
      assert.equal((await send(port, nginx, `${SP}, ${REAL}, 127.0.0.5`)).status, 403, "a forged entry ahead of the CDN's");
      assert.equal((await send(port, nginx, `${SP}, ${REAL}`)).status, 403, "around the CDN, straight to nginx");
      assert.equal((await send(port, ATTACKER, `${SP}, 127.0.0.5`)).status, 403, "straight to orderbridge");
    });
  }

  it("either: a forged header does not stand in for the signature", async () => {
    const { port } = await behind({ SP_AUTH: "either", SP_ALLOWED_IPS: SP, TRUST_PROXY: "127.0.0.2" });
    assert.equal((await send(port, "127.0.0.2", SP)).status, 201);
    assert.equal((await send(port, ATTACKER, SP)).status, 401, "not allowed by address: the signature is required");
  });

  it("SP_AUTH=hmac with TRUST_PROXY=true starts, and warns that logged client addresses can be forged", async () => {
    const t = await service({ TRUST_PROXY: "true" });
    assert.ok(t.logs.some((l) => /"level":"warn"/.test(l) && /logged client addresses can be forged/.test(l)));
  });
});
