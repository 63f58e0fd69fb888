import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { LISTENING, spawnServer } from "../helpers/process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dirs: string[] = [];
const tempDir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-logs-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const ESC = "\u001b";
const ADMIN = "admin-token-0123456789abcdef";

describe("the start-up line", () => {
  it("gives the URL to reach and the paths the service answers at", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", ADMIN_TOKEN: ADMIN });
    try {
      const line = server
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => String(l["message"]).startsWith("orderbridge listening on"));
      assert.ok(line !== undefined, server.output());
      assert.equal(
        line["message"],
        `orderbridge listening on http://127.0.0.1:${server.port} — Subscribe Pro callback POST /callbacks/subscribe-pro/order, ` +
          "Recharge webhooks off (no RECHARGE_CLIENT_SECRETS), admin /admin, metrics /metrics",
      );
      assert.equal(line["url"], `http://127.0.0.1:${server.port}`);
      assert.equal(line["port"], server.port);
      // The URL is one a client reaches the service at, and the paths are the ones it serves.
      assert.equal((await fetch(`${String(line["url"])}/metrics`)).status, 200);
      assert.equal((await fetch(`${String(line["url"])}/admin/orders`, { headers: { Authorization: `Bearer ${ADMIN}` } })).status, 200);
      assert.equal((await fetch(`${String(line["url"])}/callbacks/subscribe-pro/order`)).status, 405);
    } finally {
      await server.stop();
    }
  });

  it("says which parts are off and why, and names Recharge's URLs when they are on", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", RECHARGE_CLIENT_SECRETS: "rc-secret", RECHARGE_WRITEBACK: "off" });
    try {
      assert.match(server.output(), /Recharge webhooks POST \/webhooks\/recharge \(or \/webhooks\/recharge\/<topic>\), admin off \(no ADMIN_TOKEN\), metrics \/metrics/);
      const res = await fetch(`http://127.0.0.1:${server.port}/webhooks/recharge/order-created`, { method: "POST", body: "" });
      assert.equal(res.status, 200, "Recharge's URL answers (an empty test body)");
    } finally {
      await server.stop();
    }
  });
});

describe("log format", () => {
  it("a pipe gets JSON lines, without escape codes, when LOG_FORMAT is not set", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", LOG_FORMAT: "" });
    await fetch(`http://127.0.0.1:${server.port}/nope`);
    await server.stop();
    const lines = server
      .output()
      .split("\n")
      .filter((l) => l.trim() !== "");
    assert.ok(lines.length >= 3, server.output());
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
    assert.ok(!server.output().includes(ESC), "no ANSI escape codes");
  });

  it("LOG_FORMAT=pretty into a pipe: readable lines, still without escape codes", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s", LOG_FORMAT: "pretty" });
    await server.stop();
    assert.match(server.output(), /^\d\d:\d\d:\d\d\.\d{3} info orderbridge listening on http:\/\//m);
    assert.ok(!server.output().includes(ESC), "no ANSI escape codes");
  });

  const script = spawnSync("script", ["--version"], { encoding: "utf8" });
  const noPty = script.error !== undefined ? "script(1) is not installed: no pseudo-terminal to run the service in" : false;
  it("a terminal gets pretty, colourised lines", { skip: noPty }, async () => {
    // script(1) runs the service with its stdout on a pseudo-terminal, and copies what it writes.
    const cmd = `exec ${process.execPath} --import tsx src/main.ts`;
    const child = spawn("script", ["-qefc", cmd, "/dev/null"], {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "", NODE_ENV: "test", PORT: "0", HOST: "127.0.0.1", DATA_DIR: tempDir(), SP_HMAC_SECRETS: "s" },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      // Colour codes start with ESC (a control character: built from text, not a regex literal).
      const plain = (): string => out.replace(new RegExp(`${ESC}\\[[0-9;]*m`, "g"), "");
      for (let i = 0; i < 400 && !LISTENING.test(plain()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(plain(), /^\d\d:\d\d:\d\d\.\d{3} info orderbridge listening on http:\/\//m, out);
      assert.ok(out.includes(`${ESC}[32minfo${ESC}[39m`), `the level is coloured:\n${JSON.stringify(out.slice(0, 400))}`);
    } finally {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
      await exited;
    }
  });
});
