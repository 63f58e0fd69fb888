import fs from "node:fs";
import { fileURLToPath } from "node:url";

/** package.json at the package root: the same path from src/ (tsx) and from dist/ (built, installed). */
export const PACKAGE_JSON = fileURLToPath(new URL("../package.json", import.meta.url));

/** orderbridge's version, as its package.json says. */
export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "unknown";
}

/** orderbridge's version, read once. */
export const VERSION: string = packageVersion();
