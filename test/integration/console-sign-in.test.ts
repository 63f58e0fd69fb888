import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { ADMIN_TOKEN, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// The console's sign-in without a browser (so it runs where no Chromium is): a wrong token is
// recorded, guessing is throttled per address, and the session cookie is set as it should be.

const [sqlite] = await storeKinds();
describe("console sign-in", { skip: sqlite?.skip ?? false }, () => {
  let t: TestService;
  before(async () => {
    t = await startService("sqlite");
  });
  after(() => t.stop());
  const signIn = (token: string) => request(t.app).post("/console/sign-in").type("form").send({ token });

  it("sets an HttpOnly, SameSite=Strict session cookie for /console; without one every page sends to the sign-in", async () => {
    const ok = await signIn(ADMIN_TOKEN);
    assert.equal(ok.status, 303);
    const cookie = String(ok.headers["set-cookie"]?.[0] ?? "");
    assert.match(cookie, /^ob_console=ses_[\w-]+\.\d+\.[\w-]+; Max-Age=28800; Path=\/console; Expires=[^;]+; HttpOnly; SameSite=Strict$/);
    const page = await request(t.app)
      .get("/console/events")
      .set("Cookie", cookie.split(";")[0] as string);
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-security-policy"]), /^default-src 'none'; style-src 'self'/);
    const forged = await request(t.app)
      .get("/console/events")
      .set(
        "Cookie",
        (cookie.split(";")[0] as string).replace(/.$/, (c) => (c === "A" ? "B" : "A")),
      );
    assert.equal(forged.status, 303, "a cookie whose MAC does not match opens nothing");
    assert.equal(forged.headers["location"], "/console/sign-in");
  });

  it("answers a form too large or with too many fields with a 4xx and its errorMessage, not a 500", async () => {
    const big = await request(t.app)
      .post("/console/sign-in")
      .type("form")
      .send(`token=${"a".repeat(20_000)}`);
    assert.equal(big.status, 413);
    assert.match(big.body.errorMessage, /larger than 16kb/);
    const many = await request(t.app)
      .post("/console/sign-in")
      .type("form")
      .send(Array.from({ length: 60 }, (_, i) => `f${i}=1`).join("&"));
    assert.equal(many.status, 400);
    assert.match(many.body.errorMessage, /too many fields/);
  });

  it("records each wrong token and refuses a sixth within a minute from one address, even with the right token", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await signIn(`wrong-${i}`)).status, 401);
    const sixth = await signIn(ADMIN_TOKEN);
    assert.equal(sixth.status, 429);
    assert.ok(Number(sixth.headers["retry-after"]) > 0);
    const refused = await t.store.db.selectFrom("console_actions").selectAll().where("action", "=", "sign-in-refused").execute();
    assert.equal(refused.length, 5);
    assert.ok(refused.every((r) => r.client_address !== null));
  });
});

// The throttle is counted in the database: two instances sharing it (or one restarted) counted
// five wrong tokens each, ten a minute in all, and a burst sent together passed the count at once.
for (const { kind, skip } of await storeKinds()) {
  describe(`console sign-in throttle, two instances on one database [${kind}]`, { skip }, () => {
    let a: TestService;
    let b: TestService;
    before(async () => {
      a = await startService(kind, { env: { TRUST_PROXY: "loopback" } });
      const shared: Record<string, string> =
        a.config.database.kind === "sqlite"
          ? { DATA_DIR: a.dataDir }
          : { DATA_DIR: a.dataDir, DATABASE_URL: a.config.database.url, DATABASE_SCHEMA: a.config.database.schema ?? "" };
      b = await startService(kind, { env: { TRUST_PROXY: "loopback", ...shared } });
    });
    after(async () => {
      await b?.stop();
      await a?.stop();
    });
    const signIn = (t: TestService, token: string, from: string) => request(t.app).post("/console/sign-in").set("X-Forwarded-For", from).type("form").send({ token });

    it("counts the wrong tokens sent to either instance: the sixth is refused by the other one", async () => {
      for (let i = 0; i < 3; i++) assert.equal((await signIn(a, `wrong-a-${i}`, "203.0.113.21")).status, 401);
      for (let i = 0; i < 2; i++) assert.equal((await signIn(b, `wrong-b-${i}`, "203.0.113.21")).status, 401);
      const sixth = await signIn(a, ADMIN_TOKEN, "203.0.113.21");
      assert.equal(sixth.status, 429, "instance a counts instance b's tries");
      const seventh = await signIn(b, ADMIN_TOKEN, "203.0.113.21");
      assert.equal(seventh.status, 429);
      assert.ok(Number(seventh.headers["retry-after"]) >= 1);
      // Another address is not held back by this one's tries.
      assert.equal((await signIn(b, ADMIN_TOKEN, "203.0.113.22")).status, 303);
    });

    it("says to retry when the fifth newest wrong token is a minute old, however many there were", async () => {
      // Two instances can each let a try through at once: six in a minute. Retry-After counted from
      // the oldest then said 5 s where the address was still refused for 10.
      const now = Date.now();
      await a.store.db
        .insertInto("console_actions")
        .values(
          [55, 50, 40, 30, 20, 10].map((ago, i) => ({
            id: `act_retry_${i}`,
            at: now - ago * 1000,
            session_id: "-",
            action: "sign-in-refused",
            target: null,
            detail: "a wrong admin token",
            client_address: "203.0.113.24",
          })),
        )
        .execute();
      const refused = await signIn(b, ADMIN_TOKEN, "203.0.113.24");
      assert.equal(refused.status, 429);
      const retryAfter = Number(refused.headers["retry-after"]);
      assert.ok(retryAfter >= 9 && retryAfter <= 11, `Retry-After ${retryAfter}`);
    });

    it("lets at most five of a burst of wrong tokens sent together be tried", async () => {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => signIn(a, `burst-${i}`, "203.0.113.23")));
      const statuses = answers.map((r) => r.status).sort();
      assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(7).fill(429)]);
      const refused = await a.store.db.selectFrom("console_actions").select("id").where("action", "=", "sign-in-refused").where("client_address", "=", "203.0.113.23").execute();
      assert.equal(refused.length, 5);
    });
  });
}
