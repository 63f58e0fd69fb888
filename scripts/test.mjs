#!/usr/bin/env node
// `npm test`: every test/**/*.test.ts under node:test (through tsx), SQLite always and PostgreSQL
// when one answers at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const only = process.argv.slice(2);

function find(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith(".test.ts") ? [p] : [];
  });
}
const files = (only.length > 0 ? only : find(path.join(root, "test"))).map((f) => path.relative(root, path.resolve(f))).sort();

const pg = spawnSync(process.execPath, ["--import", "tsx", path.join(root, "test", "helpers", "pg-probe.ts")], {
  cwd: root,
  encoding: "utf8",
});
console.log(pg.stdout.trim() || `PostgreSQL pass: skipped (probe failed: ${pg.stderr.trim().split("\n").pop()})`);

const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...files], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, NODE_ENV: "test" },
});
process.exit(r.status ?? 1);
