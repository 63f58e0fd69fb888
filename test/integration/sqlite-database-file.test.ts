import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import request from "supertest";
import { sql } from "kysely";
import { loadConfig } from "../../src/config.js";
import { ConfigError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { openStore } from "../../src/store/db.js";
import { killAll, runToExit, spawnServer, type RunningServer } from "../helpers/process.js";
import { CALLBACK, SECRET, minimalOrder, startService } from "../helpers/service.js";
import { freshDatabase } from "../helpers/stores.js";

// Issue #13, item 6: a SQLite file deleted or replaced under a running instance was written on
// (201s for orders that were gone at restart), and the restart created a new, empty database
// (numbering from OB-100000 again, old tokens placed as new orders). SQLite only: PostgreSQL has no
// file of ours.

const silent = createLogger({ level: "error", format: "json", silent: true });
const DB = "orderbridge.sqlite";

async function callback(port: number, token: string): Promise<{ status: number; body: Record<string, unknown>; retryAfter: string | null }> {
  const body = JSON.stringify(minimalOrder(token));
  const res = await fetch(`http://127.0.0.1:${port}${CALLBACK}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Sp-Hmac": signSpHmac(SECRET, body) },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get("retry-after") };
}
const readyz = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
const logLines = (output: string): { level: string; message: string; [k: string]: unknown }[] =>
  output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: string; message: string });

describe("a SQLite database file deleted under a running orderbridge", () => {
  it("answers 503, not 201, from then on, /readyz 503, says why once; a restart is refused (exit 78) unless SQLITE_ALLOW_NEW_DATABASE=true", async () => {
    const d = freshDatabase("sqlite");
    const env = { ...d.env, SP_HMAC_SECRETS: SECRET };
    const servers: RunningServer[] = [];
    try {
      const server = await spawnServer(env);
      servers.push(server);
      const first = await callback(server.port, "lost-1");
      assert.equal(first.status, 201);
      assert.equal(first.body["orderNumber"], "OB-100000");
      assert.equal(await readyz(server.port), 200);

      fs.rmSync(path.join(d.dataDir, DB));
      for (const token of ["lost-2", "lost-3", "lost-1"]) {
        const res = await callback(server.port, token);
        assert.equal(res.status, 503, `${token}: not answered as placed in a file that is gone`);
        assert.equal(res.body["errorCode"], "store_unavailable");
        assert.equal(res.retryAfter, "5");
      }
      assert.equal(await readyz(server.port), 503);
      const why = logLines(server.output()).filter((l) => l.level === "error" && /was deleted while orderbridge had it open/.test(l.message));
      assert.equal(why.length, 1, "one line says what happened");
      assert.equal(why[0]!["file"], path.join(d.dataDir, DB));
      assert.match(why[0]!.message, /answers 503 until orderbridge is restarted/);
      await server.stop("SIGTERM");
      const marker = fs.readFileSync(path.join(d.dataDir, "database-id"), "utf8").trim();
      assert.match(marker, /^[0-9a-f-]{36}$/, "the deleted database's id, beside it");

      // The restart would create a new, empty database where DATA_DIR says one was: refused, with
      // nothing created.
      const refused = await runToExit(env);
      assert.equal(refused.code, 78, refused.output);
      assert.match(
        refused.output,
        new RegExp(`orderbridge: failed to start: the SQLite database .*${DB} does not exist, but .*database-id says DATA_DIR held the database ${marker}`),
      );
      assert.match(refused.output, /Put the file back \(with its -wal file\), or start once with SQLITE_ALLOW_NEW_DATABASE=true to begin with a new, empty database/);
      assert.equal(fs.existsSync(path.join(d.dataDir, DB)), false, "nothing was created");

      // The operator's choice: a new database, which the marker names from then on.
      const allowed = await spawnServer({ ...env, SQLITE_ALLOW_NEW_DATABASE: "true" });
      servers.push(allowed);
      assert.match(allowed.output(), /SQLITE_ALLOW_NEW_DATABASE: started with the database .* instead of/);
      assert.equal((await callback(allowed.port, "lost-1")).status, 201);
      await allowed.stop("SIGTERM");
      const renamed = fs.readFileSync(path.join(d.dataDir, "database-id"), "utf8").trim();
      assert.notEqual(renamed, marker);
      const again = await spawnServer(env);
      servers.push(again);
      assert.equal(await readyz(again.port), 200);
      assert.equal((await callback(again.port, "lost-1")).status, 201, "the retry is answered from the new database");
    } finally {
      await killAll(servers);
      await d.cleanup();
    }
  });
});

describe("a SQLite file replaced or its write-ahead log deleted under a running service", () => {
  for (const c of [
    { what: "the -wal file deleted", env: { SQLITE_SYNCHRONOUS: "FULL" }, act: (file: string) => fs.rmSync(`${file}-wal`), says: /write-ahead log .*-wal was deleted/ },
    {
      what: "the database file replaced by a copy (group commit off, NORMAL)",
      env: { SQLITE_SYNCHRONOUS: "NORMAL", SQLITE_GROUP_COMMIT: "false" },
      act: (file: string) => {
        fs.copyFileSync(file, `${file}.copy`);
        fs.renameSync(`${file}.copy`, file);
      },
      says: /database file .*orderbridge\.sqlite was replaced by another file/,
    },
  ]) {
    it(`${c.what}: the next order is 503, readiness 503, reads too from then on`, async () => {
      const t = await startService("sqlite", { env: c.env });
      try {
        assert.equal((await t.callback(minimalOrder("swap-1"))).status, 201);
        c.act(path.join(t.dataDir, DB));
        const res = await t.callback(minimalOrder("swap-2"));
        assert.equal(res.status, 503);
        assert.equal(res.body.errorCode, "store_unavailable");
        assert.equal((await request(t.app).get("/readyz")).status, 503);
        assert.equal((await t.admin("/admin/orders")).status, 503, "stays failed: no answer from a file that is not at its path");
        const lines = t.logs.map((l) => JSON.parse(l) as { level: string; message: string });
        assert.equal(lines.filter((l) => l.level === "error" && c.says.test(l.message)).length, 1);
      } finally {
        await t.stop();
      }
    });
  }
});

describe("DATA_DIR/database-id names the SQLite database", () => {
  const open = (env: Record<string, string>) => openStore(loadConfig(env).database, silent);
  const idOf = async (env: Record<string, string>): Promise<string> => {
    const store = await open(env);
    try {
      return (await store.db.selectFrom("orderbridge_meta").select("value").where("key", "=", "database_id").executeTakeFirstOrThrow()).value;
    } finally {
      await store.close();
    }
  };
  const markerOf = (dir: string): string => fs.readFileSync(path.join(dir, "database-id"), "utf8").trim();

  it("a new database gets one; an installation without a marker, or from before ids, just gets one", async () => {
    const d = freshDatabase("sqlite");
    try {
      const id = await idOf(d.env);
      assert.equal(markerOf(d.dataDir), id);
      assert.equal(await idOf(d.env), id, "a restart keeps it");

      fs.rmSync(path.join(d.dataDir, "database-id"));
      assert.equal(await idOf(d.env), id, "no marker: nothing known, nothing refused");
      assert.equal(markerOf(d.dataDir), id);

      // A database from before ids (and markers): the migration and the id come with the next start.
      const store = await open(d.env);
      await sql`drop table orderbridge_meta`.execute(store.db);
      await sql`delete from orderbridge_migrations where name = '0005_meta'`.execute(store.db);
      await store.close();
      fs.rmSync(path.join(d.dataDir, "database-id"));
      const upgraded = await idOf(d.env);
      assert.notEqual(upgraded, id);
      assert.equal(markerOf(d.dataDir), upgraded);
    } finally {
      await d.cleanup();
    }
  });

  it("another database at the path is refused before it is migrated or changed; SQLITE_ALLOW_NEW_DATABASE=true uses it and names it", async () => {
    const mine = freshDatabase("sqlite");
    const other = freshDatabase("sqlite");
    try {
      const myId = await idOf(mine.env);
      const otherId = await idOf(other.env);
      fs.copyFileSync(path.join(other.dataDir, DB), path.join(mine.dataDir, DB));
      const bytes = fs.readFileSync(path.join(mine.dataDir, DB));
      await assert.rejects(open(mine.env), (e: Error) => {
        assert.ok(e instanceof ConfigError, "exit 78");
        assert.match(e.message, new RegExp(`is not the one .*database-id names \\(${myId}\\): it is the database ${otherId}`));
        assert.match(e.message, /SQLITE_ALLOW_NEW_DATABASE=true/);
        return true;
      });
      assert.ok(fs.readFileSync(path.join(mine.dataDir, DB)).equals(bytes), "the file found is left as it was");
      assert.equal(markerOf(mine.dataDir), myId, "the marker is kept");
      assert.equal(await idOf({ ...mine.env, SQLITE_ALLOW_NEW_DATABASE: "true" }), otherId);
      assert.equal(markerOf(mine.dataDir), otherId, "and names the database used from now on");
      assert.equal(await idOf(mine.env), otherId, "which then starts as usual");

      // An empty file where the database was is not it either (it has no id).
      fs.writeFileSync(path.join(mine.dataDir, DB), "");
      for (const f of ["-wal", "-shm"]) fs.rmSync(path.join(mine.dataDir, `${DB}${f}`), { force: true });
      await assert.rejects(open(mine.env), /it is a database without an id/);
    } finally {
      await mine.cleanup();
      await other.cleanup();
    }
  });
});
