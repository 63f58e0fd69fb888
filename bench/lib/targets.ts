// The Subscribe Pro callback targets: the yardsticks (bench/servers/) and orderbridge in its configurations.

import { createHmac } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { spOrderBody } from "./load.js";
import { newSchema } from "./postgres.js";
import { inTmpDir, startServer, type Server } from "./processes.js";
import { DATABASE_URL, ROOT, RUN_ID, SP_SECRET, type CallbackTarget } from "./settings.js";

let serversDir = "";

/** Compiles bench/servers/*.ts to plain JS (so the yardsticks run without a TypeScript loader in their memory). */
export function compileServers(): void {
  serversDir = inTmpDir("servers");
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  // rootDir is the project: the front door imports orderbridge's src/, compiled here alongside it
  // by the same compiler to the same target as dist/.
  const r = spawnSync(
    process.execPath,
    [
      tsc,
      "--ignoreConfig",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--types",
      "node",
      "--skipLibCheck",
      "--strict",
      "--esModuleInterop",
      "--resolveJsonModule",
      "--rootDir",
      ROOT,
      "--outDir",
      serversDir,
      ...["ceiling", "reference", "durable-peer", "front-door"].map((n) => path.join(ROOT, `bench/servers/${n}.ts`)),
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`compiling bench/servers failed:\n${r.stdout}${r.stderr}`);
  fs.writeFileSync(path.join(serversDir, "package.json"), '{"type":"module"}\n');
  // What the compiled src/ finds beside itself in the project: its packages, schemas and OpenAPI document.
  for (const name of ["node_modules", "schemas", "openapi.yaml"]) {
    fs.symlinkSync(path.join(ROOT, name), path.join(serversDir, name));
  }
}

const serverScript = (name: string): string => path.join(serversDir, "bench", "servers", `${name}.js`);

export function orderbridgeEnv(extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    PORT: "0",
    HOST: "127.0.0.1",
    SP_HMAC_SECRETS: SP_SECRET,
    ...extra,
  };
}

export function dataDir(name: string): string {
  const d = inTmpDir(`data-${name}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

export function startTarget(t: CallbackTarget): Promise<Server> {
  switch (t) {
    case "ceiling":
      return startServer(t, [serverScript("ceiling")], { PORT: "0", NODE_ENV: "production" });
    case "reference":
      return startServer(t, [serverScript("reference")], { PORT: "0", NODE_ENV: "production", SP_HMAC_SECRET: SP_SECRET });
    case "peer-full":
      return startServer(t, [serverScript("durable-peer")], { PORT: "0", NODE_ENV: "production", SP_HMAC_SECRET: SP_SECRET, DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL" });
    case "peer-normal":
      return startServer(t, [serverScript("durable-peer")], { PORT: "0", NODE_ENV: "production", SP_HMAC_SECRET: SP_SECRET, DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "NORMAL" });
    case "front-door":
      return startServer(t, [serverScript("front-door")], orderbridgeEnv({ DATA_DIR: dataDir(t) }));
    case "ob-sqlite-full":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL" }));
    case "ob-sqlite-normal":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "NORMAL" }));
    case "ob-sqlite-nogroup":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL", SQLITE_GROUP_COMMIT: "false" }));
    case "ob-sqlite-2workers":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL", WORKERS: "2" }));
    case "ob-postgres":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), DATABASE_URL, DATABASE_SCHEMA: newSchema("callback") }));
  }
}

/** One request, checked, so a misconfigured target stops the run before it produces numbers. */
export async function smokeTest(s: Server): Promise<void> {
  const body = spOrderBody(`bench-${RUN_ID}-smoke-${s.name}`);
  const res = await fetch(`${s.url}/callbacks/subscribe-pro/order`, {
    method: "POST",
    headers: { "content-type": "application/json", "sp-hmac": createHmac("sha256", SP_SECRET).update(body).digest("hex") },
    body,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`${s.name}: a signed order got ${res.status}, not 201: ${text.slice(0, 300)}`);
}
