// The report: BENCHMARKS.md (the figures, the targets met and missed, and bench/analysis.md) and the summary on stdout.

import fs from "node:fs";
import os from "node:os";
import { CONNECTION_TARGETS, FEW_CONNECTIONS } from "../parts/connections.js";
import type { ScrapeTimes } from "../parts/retention.js";
import { check, fmtSec, mark, ms, num, ratio, ratioText } from "./format.js";
import { describe, median, summarise, type Measurement, type Summary } from "./load.js";
import type { Results } from "./results.js";
import {
  ANALYSIS,
  BACKLOG_BURST,
  BACKLOG_PER_SECOND,
  BACKLOG_TIMEOUT_MS,
  BACKLOG_WEBHOOKS,
  CALLBACK_TARGETS,
  CONNECTIONS,
  FAIL_RATE,
  PLACEMENT_ORDERS,
  RETENTION_PRUNE_DAYS,
  RETENTION_SCRAPES,
  RETENTION_SPREAD_DAYS,
  ROUNDS,
  SECONDS,
  WARM_SECONDS,
  type CallbackTarget,
} from "./settings.js";

const LABELS: Record<CallbackTarget, string> = {
  ceiling: "ceiling (bare Express, raw body, fixed 201)",
  reference: "reference (Subscribe Pro's Node example)",
  "peer-full": "durable peer (the reference + one INSERT into better-sqlite3, WAL, synchronous=FULL)",
  "peer-normal": "durable peer, synchronous=NORMAL",
  "front-door": "orderbridge's front door only (its Express app, auth, access log, metrics; fixed 201, no order)",
  "ob-sqlite-full": "orderbridge, SQLite synchronous=FULL",
  "ob-sqlite-normal": "orderbridge, SQLite synchronous=NORMAL",
  "ob-sqlite-nogroup": "orderbridge, SQLite FULL, SQLITE_GROUP_COMMIT=false",
  "ob-sqlite-2workers": "orderbridge, SQLite FULL, WORKERS=2",
  "ob-postgres": "orderbridge, PostgreSQL",
};
const isOrderbridge = (t: CallbackTarget): boolean => t.startsWith("ob-");
/** More than this share of a core busy outside the server and the load generator: something else disturbed the run. */
const DISTURBED_OTHER_CPU_PCT = 25;
/** Only meaningful where nothing of ours runs outside the server and the load generator (not with PostgreSQL). */
const disturbed = (m: Measurement, usesPostgres: boolean): boolean => !usesPostgres && m.otherCpuPct > DISTURBED_OTHER_CPU_PCT;

interface Report {
  markdown: string;
  summary: string;
}

export function buildReport(results: Results, started: Date, elapsedMs: number): Report {
  const md: string[] = [];
  const out: string[] = [];
  const cpus = os.cpus();
  const envUsed = Object.entries(process.env)
    .filter(([k]) => k.startsWith("BENCH_"))
    .map(([k, v]) => `${k}=${v ?? ""}`)
    .sort();
  const command = [...envUsed, "npm run bench"].join(" ");

  md.push("# orderbridge benchmarks", "");
  md.push(`Date: ${started.toISOString().replace("T", " ").slice(0, 16)} UTC (the run took ${(elapsedMs / 60_000).toFixed(1)} min)`, "");
  md.push("## Machine", "");
  md.push(`- CPU: ${cpus[0]?.model.trim() ?? "unknown"} × ${cpus.length}`);
  md.push(`- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`);
  md.push(`- Node.js: ${process.version}; OS: ${os.type()} ${os.release()} (${os.arch()})`);
  md.push(`- PostgreSQL: ${results.pgVersion ?? `not used (${results.pgSkip ?? "not selected"})`}`);
  md.push(`- CPU idle in the second before the run: ${num(results.idleBefore * 100)}% (load averages then ${results.loadAvgBefore.map((x) => x.toFixed(2)).join(", ")}).`);
  md.push("- The load generator (autocannon, in the runner's process) and every server share these cores; all traffic is on 127.0.0.1.", "");
  md.push("## Command", "", "```sh", command, "```", "");
  md.push(
    `Settings: ${CONNECTIONS} connections, HTTP/1.1 keep-alive, no pipelining; each run warms the target for ${WARM_SECONDS} s, ` +
      `then measures ${SECONDS} s; ${ROUNDS} round(s), the targets alternating within each round; the figures are the medians of the rounds. ` +
      "Every request is a different, validly signed order (a unique `salesOrderToken`, or a unique Recharge order id). " +
      `A run with more than ${FAIL_RATE * 100}% non-2xx answers or errors counts as failed and is left out of the median. ` +
      "Max RSS is the largest VmRSS (summed over the instance's processes) sampled every 250 ms under load. " +
      "orderbridge runs from `dist/` with `NODE_ENV=production` and `LOG_LEVEL=info` (the access log on, written to a file).",
    "",
  );
  if (results.skipped.length > 0) {
    md.push("Skipped: " + results.skipped.join("; ") + ".", "");
  }

  // --- the callback
  const sum = new Map<CallbackTarget, Summary>();
  for (const [t, list] of results.callback) sum.set(t, summarise(list));
  if (sum.size > 0) {
    md.push(`## Subscribe Pro order callback (${CONNECTIONS} connections)`, "");
    md.push("| Target | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | rounds ok |", "|---|---:|---:|---:|---:|---:|---:|");
    out.push(`Subscribe Pro callback, ${CONNECTIONS} connections, median of ${ROUNDS} round(s) × ${SECONDS} s:`);
    out.push(`  ${"target".padEnd(17)} ${"req/s".padStart(7)} ${"p50".padStart(6)} ${"p99".padStart(6)} ${"RSS MB".padStart(7)} ${"CPU ms/req".padStart(10)}`);
    for (const t of CALLBACK_TARGETS) {
      const s = sum.get(t);
      if (s === undefined) continue;
      const p99Mark = isOrderbridge(t) ? ` ${mark(check(s.p99, (v) => v < 50))}` : "";
      const rssMark = isOrderbridge(t) ? ` ${mark(check(s.rssMb, (v) => v < 200))}` : "";
      md.push(
        `| ${LABELS[t]} | ${num(s.reqPerSec)} | ${ms(s.p50)} | ${ms(s.p99)}${p99Mark} | ${num(s.rssMb)}${rssMark} | ${num(s.cpuMsPerReq, 2)} | ${s.passed}/${s.rounds}${s.passed < s.rounds ? " ❌" : ""} |`,
      );
      out.push(
        `  ${t.padEnd(17)} ${num(s.reqPerSec).padStart(7)} ${ms(s.p50).padStart(6)} ${ms(s.p99).padStart(6)} ${num(s.rssMb).padStart(7)} ${num(s.cpuMsPerReq, 2).padStart(10)}` +
          (s.passed < s.rounds ? `  (${s.rounds - s.passed} round(s) failed)` : ""),
      );
    }
    md.push(
      "",
      "For orderbridge: ✅/❌ against the targets p99 < 50 ms and RSS < 200 MB. Server CPU is the user + system time of the server " +
        "process per completed request in the measured runs (PostgreSQL's own processes not included).",
      "",
    );
    const runs = [...results.callback].flatMap(([t, list]) => list.map((m) => ({ t, m }))).filter(({ t }) => t !== "ob-postgres");
    const hit = runs.filter(({ t, m }) => disturbed(m, t === "ob-postgres"));
    if (hit.length > 0) {
      const line =
        `⚠ ${hit.length} of ${runs.length} runs of the yardsticks and SQLite targets were disturbed: more than ${DISTURBED_OTHER_CPU_PCT}% of a core ` +
        'was busy outside the server and the load generator (something else ran on the machine; see "other CPU" in every round). ' +
        "Compare with care, or rerun on a quiet machine.";
      md.push(line, "");
      out.push(`  ${line}`);
    }
    md.push("<details><summary>Every round</summary>", "");
    md.push(
      "| Round | Target | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | load generator CPU (% of a core) | other CPU (% of a core) | requests | non-2xx | errors |",
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (let r = 0; r < ROUNDS; r++) {
      for (const t of CALLBACK_TARGETS) {
        const m = results.callback.get(t)?.[r];
        if (m === undefined) continue;
        md.push(
          `| ${r + 1} | ${t}${m.failed ? " (failed)" : ""} | ${num(m.reqPerSec)} | ${ms(m.p50)} | ${ms(m.p99)} | ${num(m.rssMb)} | ` +
            `${num(m.serverCpuMsPerReq, 2)} | ${num(m.loadGenCpuPct)} | ${num(m.otherCpuPct)}${disturbed(m, t === "ob-postgres") ? " ⚠" : ""} | ` +
            `${m.total} | ${m.non2xx} | ${m.errors} |`,
        );
      }
    }
    md.push(
      "",
      "Other CPU: the machine's busy time not spent by the server or the load generator (PostgreSQL's processes, the kernel's " +
        "share outside them, anything else running); a round where it is high for a SQLite target or a yardstick was disturbed.",
      "",
      "</details>",
      "",
    );
  }

  // --- fewer connections
  if (results.connections !== undefined) {
    const c = results.connections;
    md.push(`## Fewer connections: ${FEW_CONNECTIONS}, and 1 (one request at a time)`, "");
    md.push(
      `At ${FEW_CONNECTIONS} connections as above (autocannon); at 1 connection one signed order after the other over one keep-alive connection, ` +
        "each timed from its write to the end of its answer (to the microsecond), for the same seconds. Medians of the rounds.",
      "",
    );
    md.push(`| Target | ${FEW_CONNECTIONS} conn. req/s | p50 (ms) | p99 (ms) | 1 conn. p50 (ms) | p99 (ms) | req/s | rounds ok |`, "|---|---:|---:|---:|---:|---:|---:|---:|");
    out.push(`${FEW_CONNECTIONS} and 1 connection(s):`);
    for (const t of CONNECTION_TARGETS) {
      const few = summarise(c.few.get(t) ?? []);
      const one = (c.one.get(t) ?? []).filter((m) => !m.failed);
      const p50 = median(one.map((m) => m.p50));
      const p99 = median(one.map((m) => m.p99));
      const rps = median(one.map((m) => m.reqPerSec));
      md.push(
        `| ${LABELS[t]} | ${num(few.reqPerSec)} | ${ms(few.p50)} | ${ms(few.p99)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${num(rps)} | ${few.passed}/${few.rounds}, ${one.length}/${c.one.get(t)?.length ?? 0} |`,
      );
      out.push(`  ${t.padEnd(16)} ${FEW_CONNECTIONS}: ${num(few.reqPerSec)} req/s, p99 ${ms(few.p99)} ms; 1: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
    }
    md.push("");
  }

  // --- ratios and targets
  const full = sum.get("ob-sqlite-full");
  const ref = sum.get("reference");
  const ceil = sum.get("ceiling");
  const rows: { name: string; value: string; target: string; ok: boolean | undefined }[] = [];
  // The yardstick orderbridge is measured against: the durable peer (the handler a user would write
  // by hand, committing each order to SQLite before answering). The reference and the ceiling
  // persist nothing: their ratios are shown, without a target.
  const peer = sum.get("peer-full");
  const peerNormal = sum.get("peer-normal");
  for (const t of ["ob-sqlite-full", "ob-sqlite-normal", "ob-sqlite-nogroup", "ob-sqlite-2workers", "ob-postgres"] as const) {
    const s = sum.get(t);
    if (s === undefined) continue;
    const isFull = t === "ob-sqlite-full";
    if (peer !== undefined && t !== "ob-sqlite-normal") {
      const x = ratio(s.reqPerSec, peer.reqPerSec);
      rows.push({ name: `${t} / peer-full (req/s)`, value: ratioText(x), target: isFull ? "≥ 1.0×" : "", ok: isFull ? check(x, (v) => v >= 1) : undefined });
    }
    if (peerNormal !== undefined && t === "ob-sqlite-normal") {
      rows.push({ name: `${t} / peer-normal (req/s)`, value: ratioText(ratio(s.reqPerSec, peerNormal.reqPerSec)), target: "", ok: undefined });
    }
    if (ref !== undefined && isFull) rows.push({ name: `${t} / reference (req/s)`, value: ratioText(ratio(s.reqPerSec, ref.reqPerSec)), target: "", ok: undefined });
  }
  const few = results.connections;
  if (few !== undefined) {
    const at10 = (t: "peer-full" | "ob-sqlite-full") => summarise(few.few.get(t) ?? []);
    const p50At1 = (t: "peer-full" | "ob-sqlite-full") => median((few.one.get(t) ?? []).filter((m) => !m.failed).map((m) => m.p50));
    const x = ratio(at10("ob-sqlite-full").reqPerSec, at10("peer-full").reqPerSec);
    rows.push({ name: `ob-sqlite-full / peer-full at ${FEW_CONNECTIONS} connections (req/s)`, value: ratioText(x), target: "≥ 1.0×", ok: check(x, (v) => v >= 1) });
    const y = ratio(p50At1("ob-sqlite-full"), p50At1("peer-full"));
    rows.push({ name: "ob-sqlite-full / peer-full p50 at 1 connection", value: ratioText(y), target: "≤ 1.3×", ok: check(y, (v) => v <= 1.3) });
  }
  // How much of the gap is the front door (HTTP, auth, log, metrics) and how much the order itself.
  const door = sum.get("front-door");
  if (door !== undefined) {
    if (ref !== undefined) {
      const x = ratio(door.reqPerSec, ref.reqPerSec);
      rows.push({ name: "front-door / reference (req/s)", value: ratioText(x), target: "≥ 0.95×", ok: check(x, (v) => v >= 0.95) });
    }
    if (ceil !== undefined) rows.push({ name: "front-door / ceiling (req/s)", value: ratioText(ratio(door.reqPerSec, ceil.reqPerSec)), target: "", ok: undefined });
    if (full !== undefined) rows.push({ name: "ob-sqlite-full / front-door (req/s)", value: ratioText(ratio(full.reqPerSec, door.reqPerSec)), target: "", ok: undefined });
  }
  const pgSum = sum.get("ob-postgres");
  if (pgSum !== undefined && full !== undefined) {
    const x = ratio(pgSum.reqPerSec, full.reqPerSec);
    rows.push({ name: "ob-postgres / ob-sqlite-full (req/s)", value: ratioText(x), target: "≥ 0.6×", ok: check(x, (v) => v >= 0.6) });
  }
  if (full !== undefined) {
    rows.push({ name: `ob-sqlite-full p99 at ${CONNECTIONS} connections`, value: `${ms(full.p99)} ms`, target: "< 50 ms", ok: check(full.p99, (v) => v < 50) });
    rows.push({ name: "ob-sqlite-full max RSS", value: `${num(full.rssMb)} MB`, target: "< 200 MB", ok: check(full.rssMb, (v) => v < 200) });
  }
  const scaleOne = results.scale === undefined ? undefined : summarise(results.scale.one);
  const scaleTwo = results.scale === undefined ? undefined : summarise(results.scale.two);
  if (scaleOne !== undefined && scaleTwo !== undefined) {
    rows.push({ name: "PostgreSQL 2 instances / 1 instance (req/s)", value: ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec)), target: "", ok: undefined });
  }
  const bl = results.backlog;
  if (bl !== undefined) {
    const ok = bl.percentOfLimit !== undefined && !bl.timedOut ? bl.percentOfLimit >= 95 && bl.rejections429 === 0 : false;
    rows.push({
      name: "Recharge write-back backlog: rate after the burst, 429s",
      value: `${bl.percentOfLimit === undefined ? "–" : `${bl.percentOfLimit.toFixed(1)}%`} of ${BACKLOG_PER_SECOND}/s, ${bl.rejections429} × 429`,
      target: "≥ 95%, 0 × 429",
      ok,
    });
  }
  const pl = results.placement;
  if (pl !== undefined && pl.on.length > 0 && pl.off.length > 0) {
    const ratio = median(pl.on) / median(pl.off);
    rows.push({
      name: `Placing ${PLACEMENT_ORDERS} burst Recharge orders: write-back on / off`,
      value: `${ratio.toFixed(2)}× (${fmtSec(median(pl.on))} / ${fmtSec(median(pl.off))})`,
      target: "≤ 1.2×",
      ok: ratio <= 1.2,
    });
  }
  if (rows.length > 0) {
    md.push("## Ratios and targets", "");
    md.push("Ratios of the medians above, from the same run.", "");
    md.push("| | Value | Target | |", "|---|---:|---|---|");
    for (const r of rows) md.push(`| ${r.name} | ${r.value} | ${r.target} | ${r.target === "" ? "" : mark(r.ok)} |`);
    md.push("");
    out.push("Ratios and targets:");
    for (const r of rows) out.push(`  ${r.target === "" ? "  " : mark(r.ok)} ${r.name}: ${r.value}${r.target === "" ? "" : ` (target ${r.target})`}`);
  }

  // --- Recharge acknowledgement
  const ack = results.rechargeAck;
  if (ack !== undefined) {
    md.push(`## Recharge webhook acknowledgement (${CONNECTIONS} connections)`, "");
    md.push(
      "orderbridge on SQLite (FULL) with Recharge webhooks on; signed `order/created` deliveries (the 2021-11 fixture, a unique order id each) " +
        "to `/webhooks/recharge/order/created`, each answered once it is in the durable inbox. The worker places the orders and queues the " +
        "write-backs (to a local Recharge API stand-in) in the same process meanwhile.",
      "",
    );
    md.push("| req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | requests | non-2xx | errors |", "|---:|---:|---:|---:|---:|---:|---:|---:|");
    md.push(`| ${num(ack.reqPerSec)} | ${ms(ack.p50)} | ${ms(ack.p99)} | ${num(ack.rssMb)} | ${num(ack.serverCpuMsPerReq, 2)} | ${ack.total} | ${ack.non2xx} | ${ack.errors} |`);
    if (ack.failed) md.push("", `❌ failed: ${JSON.stringify(ack.statusCodes)}`);
    if (disturbed(ack, false)) {
      md.push("", `⚠ disturbed: ${num(ack.otherCpuPct)}% of a core was busy outside orderbridge and the load generator during the run.`);
    }
    md.push("");
    out.push(`Recharge webhook ack: ${describe(ack)}`);
  }

  // --- PostgreSQL scale-out
  if (results.scale !== undefined && scaleOne !== undefined && scaleTwo !== undefined) {
    md.push("## PostgreSQL: one and two instances", "");
    md.push(
      `Two orderbridge processes on one schema. (a) all ${CONNECTIONS} connections to one instance (the other idle); (b) ${CONNECTIONS / 2} ` +
        "connections to each, from two autocannon instances run together, summed (latency percentiles over both). " +
        `Median of ${ROUNDS} round(s), (a) and (b) alternating. ` +
        (results.scalePinning === undefined
          ? "The load generator, both instances and PostgreSQL share the cores (taskset was not available)."
          : `The load generator is pinned to CPU ${results.scalePinning.loadGenerator} and the instances to CPU ${results.scalePinning.servers} (taskset); ` +
            `PostgreSQL's processes are not pinned.${os.cpus().length === 2 ? " On this 2-core machine that leaves one core to both instances: a scale-out figure needs more cores." : ""}`),
      "",
    );
    md.push("| | req/s | p50 (ms) | p99 (ms) | max RSS (MB, all instances) | server CPU (ms/req) | rounds ok |", "|---|---:|---:|---:|---:|---:|---:|");
    for (const [label, x] of [
      ["(a) 1 instance", scaleOne],
      ["(b) 2 instances", scaleTwo],
    ] as const) {
      md.push(`| ${label} | ${num(x.reqPerSec)} | ${ms(x.p50)} | ${ms(x.p99)} | ${num(x.rssMb)} | ${num(x.cpuMsPerReq, 2)} | ${x.passed}/${x.rounds} |`);
    }
    md.push(`| ratio (b)/(a) | ${ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec))} | | | | | |`, "");
    out.push(
      `PostgreSQL 1 instance: ${num(scaleOne.reqPerSec)} req/s (p99 ${ms(scaleOne.p99)} ms); 2 instances: ${num(scaleTwo.reqPerSec)} req/s ` +
        `(p99 ${ms(scaleTwo.p99)} ms); ratio ${ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec))}`,
    );
  }

  // --- backlog
  if (bl !== undefined) {
    md.push("## Recharge write-back backlog", "");
    md.push(
      `${BACKLOG_WEBHOOKS} signed \`order/created\` webhooks delivered as fast as possible to orderbridge (SQLite, ` +
        `\`RECHARGE_RATE_LIMIT_BURST=${BACKLOG_BURST}\`, \`RECHARGE_RATE_LIMIT_PER_SECOND=${BACKLOG_PER_SECOND}\`, \`WORKER_CONCURRENCY=4\`), ` +
        `whose Recharge API stand-in enforces the same leaky bucket (${BACKLOG_BURST}, ${BACKLOG_PER_SECOND}/s) and answers 429 when it overflows. ` +
        `Ideal: ${BACKLOG_BURST} write-backs at once, then ${BACKLOG_PER_SECOND}/s, so the ${BACKLOG_WEBHOOKS}th comes ` +
        `${(BACKLOG_WEBHOOKS - BACKLOG_BURST) / BACKLOG_PER_SECOND} s after the first. ` +
        `Achieved rate = ${BACKLOG_WEBHOOKS - BACKLOG_BURST} / (time of the ${BACKLOG_WEBHOOKS}th − time of the ${BACKLOG_BURST}th).`,
      "",
    );
    md.push("| | Value |", "|---|---:|");
    md.push(`| webhooks accepted | ${bl.accepted}/${bl.delivered} in ${fmtSec(bl.deliverMs)} |`);
    md.push(`| write-backs succeeded (\`PUT /orders/{id}\`) | ${bl.succeeded}/${BACKLOG_WEBHOOKS}${bl.timedOut ? ` (stopped after ${BACKLOG_TIMEOUT_MS / 60_000} min)` : ""} |`);
    md.push(`| first PUT → ${BACKLOG_BURST}th success | ${fmtSec(bl.fortiethMs)} |`);
    md.push(`| first PUT → ${BACKLOG_WEBHOOKS}th success | ${fmtSec(bl.firstToLastMs)} (ideal ≈ ${(BACKLOG_WEBHOOKS - BACKLOG_BURST) / BACKLOG_PER_SECOND} s) |`);
    md.push(
      `| rate after the burst | ${bl.rate === undefined ? "–" : `${bl.rate.toFixed(3)}/s`} = ${bl.percentOfLimit === undefined ? "–" : `${bl.percentOfLimit.toFixed(1)}%`} of ${BACKLOG_PER_SECOND}/s ${mark(bl.percentOfLimit === undefined ? false : bl.percentOfLimit >= 95)} |`,
    );
    md.push(
      `| 429 answers | ${bl.rejections429} ${mark(bl.rejections429 === 0)}${bl.rejectionTimes.length > 0 ? ` (${bl.rejectionTimes.join(", ")}, counted from the first PUT)` : ""} |`,
    );
    md.push(`| other failed calls | ${bl.otherFailures} |`);
    md.push(`| max RSS | ${num(bl.rssMb)} MB |`, "");
    out.push(
      `Backlog: ${bl.succeeded}/${BACKLOG_WEBHOOKS} written back, first→${BACKLOG_WEBHOOKS}th ${fmtSec(bl.firstToLastMs)}, ` +
        `${bl.rate?.toFixed(3) ?? "–"}/s (${bl.percentOfLimit?.toFixed(1) ?? "–"}% of ${BACKLOG_PER_SECOND}/s), ${bl.rejections429} × 429`,
    );
  }

  // --- retention
  const rt = results.retention;
  if (rt !== undefined) {
    const rows = rt.rows.toLocaleString("en-US").replace(/,/g, " ");
    md.push(`## Retention: ${rows} finished rows (SQLite FULL, ${CONNECTIONS} connections)`, "");
    md.push(
      `Two orderbridge processes on SQLite FULL, measured alternately: one on a new database, one on a database seeded with ${rows} ` +
        `finished jobs (done, some skipped and ignored; ≈ 3.7 KB each, like a Recharge event with its body and payload) and ${rows} placed ` +
        `callbacks (done, ≈ 1.1 KB of stored answer each), finished over the last ${RETENTION_SPREAD_DAYS} days, so within the default ` +
        `\`RETENTION_DAYS\` (30) and kept (seeded in ${fmtSec(rt.seedMs)} with INSERT … SELECT over a recursive CTE; database file ` +
        `${num(rt.dbMb)} MB; local orders are not seeded). For each, ${RETENTION_SCRAPES} sequential \`GET /metrics\` on the idle server ` +
        "(request to the end of the body; the queue gauges read the database on every scrape), then the order callback under load as above. " +
        `Last, the seeded database once more with \`RETENTION_DAYS=${RETENTION_PRUNE_DAYS}\` and \`PRUNE_INTERVAL_MS=1000\`: the pruner starts ` +
        "a second after start-up and deletes (in batches, yielding between them) while the load is measured, and the scrapes follow.",
      "",
    );
    md.push("| | /metrics p50 (ms) | /metrics p99 (ms) | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | rounds ok |", "|---|---:|---:|---:|---:|---:|---:|---:|");
    const scr = (xs: readonly ScrapeTimes[]): ScrapeTimes => ({ p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)) });
    const rowsOut: [string, ScrapeTimes, Summary][] = [
      ["new database", scr(rt.empty.scrapes), summarise(rt.empty.load)],
      [`${rows} finished rows, kept`, scr(rt.seeded.scrapes), summarise(rt.seeded.load)],
    ];
    if (rt.pruning !== undefined) rowsOut.push([`${rows} finished rows, being pruned (RETENTION_DAYS=${RETENTION_PRUNE_DAYS})`, rt.pruning.scrapes, summarise([rt.pruning.load])]);
    for (const [label, sc, x] of rowsOut) {
      md.push(`| ${label} | ${num(sc.p50, 1)} | ${num(sc.p99, 1)} | ${num(x.reqPerSec)} | ${ms(x.p50)} | ${ms(x.p99)} | ${num(x.rssMb)} | ${x.passed}/${x.rounds} |`);
    }
    md.push("");
    const e = summarise(rt.empty.load);
    const k = summarise(rt.seeded.load);
    md.push(
      `Throughput with the rows kept / on a new database: ${ratioText(ratio(k.reqPerSec, e.reqPerSec))}.` +
        (rt.pruning === undefined
          ? ""
          : ` While pruning: ${ratioText(ratio(rt.pruning.load.reqPerSec, e.reqPerSec))}; ${rt.pruning.pruned} of the ${rt.pruning.prunable} prunable rows ` +
            `(jobs and stored answers older than ${RETENTION_PRUNE_DAYS} days) went in the ${fmtSec(rt.pruning.runMs)} the server ran.`),
      "",
    );
    out.push(
      `Retention (${rows} finished rows): /metrics p50 ${num(scr(rt.empty.scrapes).p50, 1)} → ${num(scr(rt.seeded.scrapes).p50, 1)} ms; ` +
        `req/s ${num(e.reqPerSec)} → ${num(k.reqPerSec)}` +
        (rt.pruning === undefined ? "" : `, ${num(rt.pruning.load.reqPerSec)} while pruning (${rt.pruning.pruned}/${rt.pruning.prunable} pruned)`),
    );
  }

  // The analysis (profiles, what was tried) is kept beside the runner, so that a new run keeps it.
  md.push(fs.readFileSync(ANALYSIS, "utf8").trim(), "");
  return { markdown: md.join("\n"), summary: out.join("\n") };
}
