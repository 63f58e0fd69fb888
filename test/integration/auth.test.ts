import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";

// Authentication is independent of the store: these run on SQLite. Supertest connects from
// 127.0.0.1, which Node reports as ::ffff:127.0.0.1 on a dual-stack socket.
const body = (n: string) => minimalOrder(`auth-${n}`);

const services: TestService[] = [];
async function service(env: Record<string, string>): Promise<TestService> {
  const t = await startService("sqlite", { env });
  services.push(t);
  return t;
}
after(async () => {
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
