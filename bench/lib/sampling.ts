// Memory and CPU of the servers and of the machine, from /proc.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Server } from "./processes.js";

// Memory: VmRSS of a process and its descendants (cluster workers), sampled every 250 ms.

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

function withDescendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (kids !== "") for (const k of kids.split(/\s+/)) out.push(...withDescendants(Number(k)));
    }
  } catch {
    /* gone */
  }
  return out;
}

export function sampleRss(servers: readonly Server[]): { stop: () => number } {
  let maxKb = 0;
  const sample = (): void => {
    let kb = 0;
    for (const s of servers) if (s.child.pid !== undefined) for (const pid of withDescendants(s.child.pid)) kb += rssKb(pid);
    maxKb = Math.max(maxKb, kb);
  };
  sample();
  const timer = setInterval(sample, 250);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return maxKb / 1024;
    },
  };
}

// CPU time (user + system, ms) of a process and its descendants, from /proc/<pid>/stat.
const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

export function cpuMs(servers: readonly Server[]): number {
  let ticks = 0;
  for (const s of servers) {
    if (s.child.pid === undefined) continue;
    for (const pid of withDescendants(s.child.pid)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
      } catch {
        /* gone */
      }
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** The machine's CPU time so far (ms, all cores): idle (with iowait) and total (steal included). */
export function machineCpu(): { idleMs: number; totalMs: number } {
  const cpu = (fs.readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const toMs = (ticks: number): number => (ticks * 1000) / CLK_TCK;
  return { idleMs: toMs((cpu[3] ?? 0) + (cpu[4] ?? 0)), totalMs: toMs(cpu.reduce((a, b) => a + b, 0)) };
}

/** Share of the machine's CPU time that was idle over `ms` (to tell whether something else is running). */
export async function machineIdle(ms: number): Promise<number> {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  return b.totalMs > a.totalMs ? (b.idleMs - a.idleMs) / (b.totalMs - a.totalMs) : Number.NaN;
}
