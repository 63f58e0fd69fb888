import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { runToExit, spawnServer } from "../helpers/process.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-proc-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const PAYMENT_TOKEN = "pm_live_4242424242424242_do_not_log";
const body = JSON.stringify({
  customerId: "1",
  customerEmail: "a@example.com",
  platformCustomerId: "P1",
  salesOrderToken: "proc-1",
  currency: "USD",
  shippingMethodCode: "ups_ground",
  payment: { paymentToken: PAYMENT_TOKEN, creditcardLastDigits: "4242" },
  shippingAddress: { city: "X" },
  items: [{ productSku: "RUBY-RED", qty: 1, subscription: { id: "s" } }],
});

function post(url: string, signature: string | undefined): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(signature === undefined ? {} : { "Sp-Hmac": signature }) },
    body,
  });
}

const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === "::1"));

describe("the orderbridge process", () => {
  it("without a configured secret generates one in the data dir, uses it, never logs it, and stops on SIGTERM", async () => {
    const dataDir = tempDir();
    const server = await spawnServer({ DATA_DIR: dataDir, ADMIN_TOKEN: "admin-token-0123456789" });
    const file = path.join(dataDir, "sp-hmac-secret");
    const secret = fs.readFileSync(file, "utf8").trim();
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    for (const db of ["orderbridge.sqlite", "orderbridge.sqlite-wal"]) {
      assert.equal(fs.statSync(path.join(dataDir, db)).mode & 0o777, 0o600, `${db} holds customers' data: owner only`);
    }
    assert.match(server.output(), /generated a callback secret/);

    const url = `http://127.0.0.1:${server.port}/callbacks/subscribe-pro/order`;
    assert.equal((await post(url, undefined)).status, 401);
    const signature = signSpHmac(secret, body);
    const res = await post(url, signature);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("x-request-id")?.length, 36);

    assert.equal(await server.stop("SIGTERM"), 0);
    const logs = server.output();
    assert.match(logs, /"message":"stopped"/);
    // The start-up line shows the configuration as describeConfig masked it, not hidden by name.
    const start = logs.split("\n").find((l) => l.includes('"message":"starting orderbridge"'));
    assert.ok(start !== undefined, "the start-up line");
    const described = (JSON.parse(start) as { config: { adminToken: string; metricsToken: string; subscribePro: { hmacSecrets: string } } }).config;
    assert.equal(described.adminToken, "****", "an admin token is set, shown masked");
    assert.equal(described.metricsToken, "(GET /metrics open)");
    assert.equal(described.subscribePro.hmacSecrets, "1 configured");
    for (const leaked of [secret, signature, PAYMENT_TOKEN, "admin-token-0123456789"]) {
      assert.ok(!logs.includes(leaked), `the logs must not contain ${leaked.slice(0, 12)}…`);
    }

    // A restart keeps the same secret.
    const again = await spawnServer({ DATA_DIR: dataDir });
    try {
      assert.equal(fs.readFileSync(file, "utf8").trim(), secret);
      assert.equal((await post(`http://127.0.0.1:${again.port}/callbacks/subscribe-pro/order`, signature)).status, 201);
    } finally {
      await again.stop();
    }
  });

  it("refuses to start in production without a secret, with a clear message", async () => {
    const dataDir = tempDir();
    const { code, output } = await runToExit({ NODE_ENV: "production", DATA_DIR: dataDir });
    assert.equal(code, 78);
    assert.match(output, /refusing to start: invalid configuration/);
    assert.match(output, /SP_HMAC_SECRETS is required in production/);
    assert.equal(fs.existsSync(path.join(dataDir, "sp-hmac-secret")), false, "no secret is generated in production");
  });

  it("a SIGTERM the moment it says it is listening stops it gracefully (exit 0), every time", async () => {
    // The handlers were installed after the "listening" line: a supervisor that signalled at once
    // killed the process (exit by signal) about one time in four.
    for (let i = 0; i < 6; i++) {
      const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s" });
      assert.equal(await server.stop("SIGTERM"), 0, server.output());
    }
  });

  it("warns at start of a variable that looks like a misspelt setting, with the setting, never the value (issue #15, item 4)", async () => {
    const refused = await runToExit({ NODE_ENV: "production", DATA_DIR: tempDir(), SP_HMAC_SECRET: "sp-secret-value-0123" });
    assert.equal(refused.code, 78);
    assert.match(refused.output, /SP_HMAC_SECRETS is required in production/);
    assert.match(refused.output, /warning: SP_HMAC_SECRET is not an orderbridge setting and is ignored: did you mean SP_HMAC_SECRETS\?/);
    // The warning comes before the "listening" line spawnServer waits for.
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", RECHARGE_CLIENT_SECRET: "rc-secret-value-0123" });
    assert.equal(await server.stop("SIGTERM"), 0);
    const warning = server
      .output()
      .split("\n")
      .find((l) => l.includes("RECHARGE_CLIENT_SECRET is not an orderbridge setting"));
    assert.ok(warning !== undefined, server.output());
    assert.deepEqual((({ level, message, variable, suggestion }) => ({ level, message, variable, suggestion }))(JSON.parse(warning) as Record<string, string>), {
      level: "warn",
      message: "RECHARGE_CLIENT_SECRET is not an orderbridge setting and is ignored: did you mean RECHARGE_CLIENT_SECRETS?",
      variable: "RECHARGE_CLIENT_SECRET",
      suggestion: "RECHARGE_CLIENT_SECRETS",
    });
    assert.doesNotMatch(refused.output + server.output(), /secret-value-0123/);
  });

  it("refuses a broken catalog, naming the bad field", async () => {
    const dataDir = tempDir();
    const catalog = path.join(dataDir, "catalog.json");
    fs.writeFileSync(catalog, JSON.stringify({ products: [{ sku: "A", name: "A", price: "ten" }] }));
    const { code, output } = await runToExit({ DATA_DIR: dataDir, SP_HMAC_SECRETS: "s", CATALOG_FILE: catalog });
    assert.notEqual(code, 0);
    assert.match(output, /is not a valid catalog: \/products\/0\/price/);
  });

  it("refuses an adapter module that is missing or does not return an adapter (exit 78), and runs one that does", async () => {
    const dataDir = tempDir();
    const missing = await runToExit({ DATA_DIR: dataDir, SP_HMAC_SECRETS: "s", PLATFORM: path.join(dataDir, "nope.mjs") });
    assert.equal(missing.code, 78);
    assert.match(missing.output, /cannot load the adapter module/);
    const bad = path.join(dataDir, "bad.mjs");
    fs.writeFileSync(bad, "export function createPlatform() { return { name: 'bad' }; }\n");
    const refused = await runToExit({ DATA_DIR: dataDir, SP_HMAC_SECRETS: "s", PLATFORM: bad });
    assert.equal(refused.code, 78);
    assert.match(refused.output, /must return an object with a string name and a createOrder/);

    const good = path.join(path.dirname(new URL(import.meta.url).pathname), "../fixtures/adapters/in-memory-adapter.mjs");
    const server = await spawnServer({ DATA_DIR: dataDir, SP_HMAC_SECRETS: "s", PLATFORM: good });
    try {
      const res = await post(`http://127.0.0.1:${server.port}/callbacks/subscribe-pro/order`, signSpHmac("s", body));
      assert.equal(res.status, 201);
      assert.match(((await res.json()) as { orderNumber: string }).orderNumber, /^MEM-1$/);
    } finally {
      await server.stop();
    }
  });

  it("says which setting to change when it cannot listen (a port in use: exit 78)", async () => {
    const dataDir = tempDir();
    const first = await spawnServer({ DATA_DIR: dataDir, SP_HMAC_SECRETS: "s" });
    try {
      const second = await runToExit({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", PORT: String(first.port), HOST: "127.0.0.1" });
      assert.equal(second.code, 78);
      assert.match(second.output, new RegExp(`cannot listen on 127\\.0\\.0\\.1, port ${first.port}: the port is already in use \\(set PORT`));
    } finally {
      await first.stop();
    }
  });

  it("WORKERS=2: workers that all die at once are replaced; a configuration no worker can start with exits 78", async () => {
    const listening = (out: string): number[] =>
      out
        .split("\n")
        .filter((l) => l.includes("orderbridge listening on http://") && l.includes('"worker":true'))
        .map((l) => (JSON.parse(l) as { pid: number }).pid);
    // A fixed port: with PORT=0 each new set of workers would get a port of its own.
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const a = probe.address() as net.AddressInfo;
        probe.close(() => resolve(a.port));
      });
    });
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", WORKERS: "2", PORT: String(port) });
    try {
      const until = async (ok: () => boolean, what: string): Promise<void> => {
        for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(ok(), `${what}:\n${server.output()}`);
      };
      await until(() => listening(server.output()).length >= 2, "two workers listen");
      const first = listening(server.output());
      for (const pid of first) process.kill(pid, "SIGKILL");
      await until(() => listening(server.output()).filter((p) => !first.includes(p)).length >= 2, "both are replaced");
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }

    const taken = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s" });
    try {
      const r = await runToExit({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", WORKERS: "2", PORT: String(taken.port), HOST: "127.0.0.1" });
      assert.equal(r.code, 78, r.output);
      assert.match(r.output, /the port is already in use/);
      assert.match(r.output, /a worker could not start with this configuration; stopping/);
    } finally {
      await taken.stop();
    }
  });

  it("a database it cannot open at start is named with the setting to look at", async () => {
    const notADir = path.join(tempDir(), "a-file");
    fs.writeFileSync(notADir, "");
    const sqlite = await runToExit({ DATA_DIR: path.join(notADir, "data"), SP_HMAC_SECRETS: "s" });
    assert.equal(sqlite.code, 78, sqlite.output);
    assert.match(sqlite.output, /cannot open the SQLite database .*a-file\/data\/orderbridge\.sqlite: .*DATA_DIR \(.*\) and the files in it must be writable/);
    const postgres = await runToExit({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", DATABASE_URL: "postgres://app:hunter2-secret@127.0.0.1:9/test?password=hunter3-secret" });
    assert.equal(postgres.code, 1, postgres.output);
    assert.match(postgres.output, /cannot connect to PostgreSQL at postgres:\/\/\*\*\*\*:\*\*\*\*@127\.0\.0\.1:9\/test\?password=\*\*\*\* \(DATABASE_URL\): .*ECONNREFUSED/);
    assert.doesNotMatch(postgres.output, /hunter2-secret|hunter3-secret/, "no password in the output");
  });

  it("writes readable lines in pretty mode", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", LOG_FORMAT: "pretty" });
    await server.stop();
    assert.match(server.output(), /^\d\d:\d\d:\d\d\.\d{3} .*info.* orderbridge listening on http:\/\/\S+:\d+/m);
  });

  it("serves IPv6 clients and matches them against an IPv6 allowlist", { skip: hasIpv6Loopback ? false : "no IPv6 loopback here" }, async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), HOST: "::1", SP_AUTH: "ip", SP_ALLOWED_IPS: "::1/128" });
    try {
      assert.equal((await post(`http://[::1]:${server.port}/callbacks/subscribe-pro/order`, undefined)).status, 201);
    } finally {
      await server.stop();
    }
    const denied = await spawnServer({ DATA_DIR: tempDir(), HOST: "::1", SP_AUTH: "ip", SP_ALLOWED_IPS: "127.0.0.1" });
    try {
      assert.equal((await post(`http://[::1]:${denied.port}/callbacks/subscribe-pro/order`, undefined)).status, 403);
    } finally {
      await denied.stop();
    }
  });
});
