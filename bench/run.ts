// orderbridge's benchmark harness: `npm run bench` (builds src/ to dist/, then runs this file).
//
// Every server runs as its own child process on 127.0.0.1; the load (autocannon, 50 connections,
// every request a different, validly signed order) is generated in this process, on the same two
// cores. The Subscribe Pro callback targets are measured in rounds, alternating the targets within
// each round so that machine noise hits all alike; the median of the rounds is reported. Results go
// to BENCHMARKS.md and a compact summary to stdout.
//
// Knobs: BENCH_SECONDS (measured seconds per run, default 8), BENCH_ROUNDS (default 3), BENCH_ONLY
// (comma list of parts: ceiling, reference, peer-full, peer-normal, front-door, ob-sqlite-full, ob-sqlite-normal, ob-sqlite-nogroup,
// ob-sqlite-2workers, ob-postgres,
// connections, recharge-ack, pg-scale, backlog, placement, retention), BENCH_SKIP_BACKLOG=1, BENCH_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test), BENCH_RETENTION_ROWS (finished rows seeded into each of
// jobs and sp_callbacks for the retention part, default 1 000 000).
//
// The parts are in bench/parts/ (callback, recharge-ack, pg-scale, backlog, placement, retention);
// bench/lib/ holds what they share: settings, processes, sampling, load, postgres, targets, report.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { dropSchemas, postgresSkipReason, postgresVersion } from "./lib/postgres.js";
import { openTmpDir, removeTmpDir, stopAllChildren } from "./lib/processes.js";
import { buildReport } from "./lib/report.js";
import type { Results } from "./lib/results.js";
import { machineIdle } from "./lib/sampling.js";
import { CALLBACK_TARGETS, CONNECTIONS, log, ONLY, REPORT, ROOT, ROUNDS, RUN_ID, SECONDS, SKIP_BACKLOG, WARM_SECONDS, wants } from "./lib/settings.js";
import { compileServers } from "./lib/targets.js";
import { runBacklog } from "./parts/backlog.js";
import { runConnections } from "./parts/connections.js";
import { runCallbackRounds } from "./parts/callback.js";
import { runPgScale } from "./parts/pg-scale.js";
import { runPlacement } from "./parts/placement.js";
import { runRechargeAck } from "./parts/recharge-ack.js";
import { runRetention } from "./parts/retention.js";

async function cleanup(): Promise<void> {
  await stopAllChildren();
  await dropSchemas();
  removeTmpDir();
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every server, dropping the schema(s), removing temp files`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = Date.now();
  if (!fs.existsSync(path.join(ROOT, "dist/main.js"))) throw new Error("dist/main.js is missing: run `npm run build` first (npm run bench does)");
  const tmpDir = openTmpDir();
  const results: Results = {
    pgSkip: undefined,
    pgVersion: undefined,
    callback: new Map(),
    connections: undefined,
    rechargeAck: undefined,
    scale: undefined,
    backlog: undefined,
    placement: undefined,
    retention: undefined,
    skipped: [],
    idleBefore: Number.NaN,
    loadAvgBefore: os.loadavg(),
  };
  try {
    // Wait (up to a minute) for the machine to be quiet: the figures are only comparable on an idle machine.
    const waitUntil = Date.now() + 60_000;
    results.idleBefore = await machineIdle(1000);
    while (results.idleBefore < 0.9 && Date.now() < waitUntil) {
      log(`machine only ${(results.idleBefore * 100).toFixed(0)}% idle: something else is running; waiting for it to calm down`);
      await sleep(4000);
      results.idleBefore = await machineIdle(1000);
    }
    results.loadAvgBefore = os.loadavg();
    const busy = results.idleBefore < 0.9 ? " (something else is running: expect noisy figures)" : "";
    log(`machine ${(results.idleBefore * 100).toFixed(0)}% idle before the run${busy}`);
    log(`run ${RUN_ID}: ${SECONDS} s per run after ${WARM_SECONDS} s warm-up, ${ROUNDS} round(s), ${CONNECTIONS} connections; temp dir ${tmpDir}`);
    const needsPg = wants("ob-postgres") || wants("pg-scale");
    if (needsPg) {
      results.pgSkip = await postgresSkipReason();
      if (results.pgSkip === undefined) results.pgVersion = await postgresVersion();
      else {
        log(`skipping the PostgreSQL parts: ${results.pgSkip}`);
        results.skipped.push(`the PostgreSQL parts (${results.pgSkip})`);
      }
    }
    if (SKIP_BACKLOG && ONLY.has("backlog")) results.skipped.push("the write-back backlog (BENCH_SKIP_BACKLOG=1)");

    const targets = CALLBACK_TARGETS.filter((t) => wants(t) && !(t === "ob-postgres" && results.pgSkip !== undefined));
    if (targets.some((t) => !t.startsWith("ob-")) || wants("connections")) compileServers();
    await runCallbackRounds(targets, results);
    if (wants("connections")) await runConnections(results);
    if (wants("recharge-ack")) await runRechargeAck(results);
    if (wants("pg-scale") && results.pgSkip === undefined) await runPgScale(results);
    if (wants("backlog")) await runBacklog(results);
    if (wants("placement")) await runPlacement(results);
    if (wants("retention")) await runRetention(results);

    const report = buildReport(results, started, Date.now() - t0);
    fs.writeFileSync(REPORT, report.markdown);
    process.stdout.write(`\n${report.summary}\n\nWritten to ${path.relative(process.cwd(), REPORT) || REPORT} (${((Date.now() - t0) / 60_000).toFixed(1)} min)\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
