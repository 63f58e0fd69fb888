// The bench's settings: its knobs (BENCH_* variables, see bench/run.ts), the fixed figures of each part, and the run's secrets.

import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const REPORT = path.join(ROOT, "BENCHMARKS.md");
export const ANALYSIS = path.join(ROOT, "bench", "analysis.md");

function intEnv(name: string, def: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  return n;
}

export const CONNECTIONS = 50;
export const WARM_SECONDS = 2;
export const SECONDS = intEnv("BENCH_SECONDS", 8, 1, 600);
export const ROUNDS = intEnv("BENCH_ROUNDS", 3, 1, 50);
export const SKIP_BACKLOG = process.env["BENCH_SKIP_BACKLOG"] === "1";
export const DATABASE_URL = process.env["BENCH_DATABASE_URL"]?.trim() || "postgres://postgres@127.0.0.1:5432/test";
export const FAIL_RATE = 0.01; // a run with more than 1% non-2xx answers (or errors) failed
export const BACKLOG_WEBHOOKS = 500;
export const BACKLOG_BURST = 40;
export const BACKLOG_PER_SECOND = 2;
export const BACKLOG_TIMEOUT_MS = 5 * 60_000;
/** The placement part: a burst of Recharge orders, placed with write-back on and off. */
export const PLACEMENT_ORDERS = 300;
export const PLACEMENT_TIMEOUT_MS = 2 * 60_000;
export const RETENTION_ROWS = intEnv("BENCH_RETENTION_ROWS", 1_000_000, 1000, 20_000_000);
/** Scrapes of /metrics per retention target (sequential, on the idle server). */
export const RETENTION_SCRAPES = 100;
/** The seeded rows finished over this many days before the run: all within the default RETENTION_DAYS (30). */
export const RETENTION_SPREAD_DAYS = 29;
/** The pruning variant's RETENTION_DAYS: the rows older than this (≈ 22/29 of them) are pruned while it is measured. */
export const RETENTION_PRUNE_DAYS = 7;

export const CALLBACK_TARGETS = [
  "ceiling",
  "reference",
  "peer-full",
  "peer-normal",
  "front-door",
  "ob-sqlite-full",
  "ob-sqlite-normal",
  "ob-sqlite-nogroup",
  "ob-sqlite-2workers",
  "ob-postgres",
] as const;
export type CallbackTarget = (typeof CALLBACK_TARGETS)[number];
const EXTRA_PARTS = ["connections", "recharge-ack", "pg-scale", "backlog", "placement", "retention"] as const;
type Part = CallbackTarget | (typeof EXTRA_PARTS)[number];
const ALL_PARTS: readonly Part[] = [...CALLBACK_TARGETS, ...EXTRA_PARTS];

export const ONLY: ReadonlySet<Part> = (() => {
  const raw = process.env["BENCH_ONLY"]?.trim();
  if (raw === undefined || raw === "") return new Set(ALL_PARTS);
  const names = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const unknown = names.filter((n) => !(ALL_PARTS as readonly string[]).includes(n));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown part(s) ${unknown.join(", ")}; known: ${ALL_PARTS.join(", ")}`);
  return new Set(names as Part[]);
})();
export const wants = (p: Part): boolean => ONLY.has(p) && !(p === "backlog" && SKIP_BACKLOG);

export const RUN_ID = randomBytes(4).toString("hex");
export const SP_SECRET = randomBytes(24).toString("hex");
export const RC_SECRET = randomBytes(24).toString("hex");
export const RC_TOKEN = `rc_bench_${randomBytes(8).toString("hex")}`;

export const log = (line: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
