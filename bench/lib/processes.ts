// Child processes: each server its own process group, output to a file, killed in `finally`.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT } from "./settings.js";

export interface Server {
  name: string;
  child: ChildProcess;
  port: number;
  url: string;
  logFile: string;
}

const children = new Set<ChildProcess>();
let tmpDir = "";

/** The run's temporary directory (server logs, data directories, compiled servers): made at the start, removed by removeTmpDir. */
export function openTmpDir(): string {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-bench-"));
  return tmpDir;
}

/** A path in the run's temporary directory. */
export function inTmpDir(name: string): string {
  return path.join(tmpDir, name);
}

export function removeTmpDir(): void {
  if (tmpDir !== "") {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = "";
  }
}

/** Stops every child still running (a part that threw, or an interrupted run). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !alive(child)) return;
  try {
    process.kill(-child.pid, signal); // the child's own process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (alive(child)) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signalGroup(child, "SIGTERM");
    const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) {
      signalGroup(child, "SIGKILL");
      await Promise.race([exited, sleep(2000)]);
    }
  }
  children.delete(child);
}

export async function stopServer(s: Server | undefined): Promise<void> {
  if (s !== undefined) await stopChild(s.child);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no output)";
  }
}

/** Spawns `node <args>` with only the given environment (plus PATH), output to a file; waits for "listening on port N" (a bench server) or "listening on http://host:N" (orderbridge). */
/**
 * Starts a server process; `cpus` (a taskset list, "0" or "0-2") pins it and its threads to those
 * cores (taskset execs node: the pid is the server's).
 */
export async function startServer(name: string, args: string[], env: Record<string, string>, timeoutMs = 30_000, cpus?: string): Promise<Server> {
  const logFile = inTmpDir(`${name}.log`);
  const fd = fs.openSync(logFile, "a");
  // A log may hold an earlier server's lines (the same name started again): read this one's only.
  const from = fs.fstatSync(fd).size;
  let child: ChildProcess;
  try {
    const [command, argv] = cpus === undefined ? [process.execPath, args] : ["taskset", ["-c", cpus, process.execPath, ...args]];
    child = spawn(command, argv, {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env },
      stdio: ["ignore", fd, fd],
      detached: true,
    });
  } finally {
    fs.closeSync(fd);
  }
  children.add(child);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /listening on (?:port |http:\/\/(?:\[[^\]]*\]|[^\s:/]+):)(\d+)/.exec(fs.readFileSync(logFile, "utf8").slice(from));
    if (m !== null) {
      const port = Number(m[1]);
      return { name, child, port, url: `http://127.0.0.1:${port}`, logFile };
    }
    if (!alive(child) || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${name} did not start (${alive(child) ? "timeout" : `exit ${String(child.exitCode ?? child.signalCode)}`}):\n${tail(logFile)}`);
    }
    await sleep(50);
  }
}

/**
 * Pins the load generator (this process, every thread of it) to the last core and answers the cores: the
 * servers on the others; undefined on a single core or without taskset. PostgreSQL's own processes
 * are not pinned (a system service): they run wherever the kernel puts them.
 */
export function pinLoadGenerator(): { loadGenerator: string; servers: string; all: string } | undefined {
  const n = os.cpus().length;
  if (n < 2) return undefined;
  const probe = spawnSync("taskset", ["-a", "-pc", String(n - 1), String(process.pid)], { encoding: "utf8" });
  if (probe.status !== 0) return undefined;
  return { loadGenerator: String(n - 1), servers: n === 2 ? "0" : `0-${n - 2}`, all: `0-${n - 1}` };
}

/** Gives this process every core again (after a pinned part). */
export function unpin(all: string): void {
  spawnSync("taskset", ["-a", "-pc", all, String(process.pid)]);
}
