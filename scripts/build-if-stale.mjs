// Compiles src/ → dist/ when dist/ is missing or older than any source (npm start, the orderbridge bin).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function newestMtime(dir) {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function buildIfStale(entry) {
  const srcDir = path.join(root, "src");
  const stale = !fs.existsSync(entry) || (fs.existsSync(srcDir) && newestMtime(srcDir) > newestMtime(path.join(root, "dist")));
  if (!stale) return;
  // TypeScript 7 (package.json "typescript-go"); "typescript" is 6, for ESLint only.
  const tsc = path.join(root, "node_modules", "typescript-go", "bin", "tsc");
  if (!fs.existsSync(tsc)) {
    console.error("orderbridge: dist/ is missing or stale and TypeScript is not installed: run `npm ci` (with dev dependencies) first.");
    process.exit(1);
  }
  console.error("orderbridge: compiling src/ → dist/ …");
  const r = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
