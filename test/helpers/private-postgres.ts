import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/**
 * A throwaway PostgreSQL cluster of its own (its own data directory, port and socket directory), for
 * fault tests that stop and start the server. It never touches the shared test PostgreSQL: it listens
 * on 127.0.0.1 only, on a free port, with its Unix socket in a private directory.
 */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  port: number;
  /** `pg_ctl stop -w`: "fast" (the default) disconnects clients cleanly; "immediate" simulates a crash. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** `pg_ctl start -w` on the same port and data directory. */
  start(): Promise<void>;
  restart(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops the server (however it is) and removes its directories; idempotent. */
  destroy(): Promise<void>;
}

const PG_ROOT = "/usr/lib/postgresql";
const COMMAND_TIMEOUT_MS = 30_000;

/** The bin directory of the newest PostgreSQL server installed under /usr/lib/postgresql/<version>/bin. */
function findServerBin(): string | undefined {
  let versions: string[];
  try {
    versions = fs.readdirSync(PG_ROOT);
  } catch {
    return undefined;
  }
  const candidates = versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(PG_ROOT, v, "bin"))
    .filter((bin) => ["initdb", "pg_ctl", "postgres"].every((exe) => isExecutable(path.join(bin, exe))));
  return candidates[0];
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function osUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no passwd file: no such user
  }
  return undefined;
}

/** A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a server binary (as the `postgres` OS user when we are root), bounded in time. */
function run(exe: string, args: string[], asPostgres: boolean, cwd: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<RunResult> {
  const [file, argv] = asPostgres ? ["runuser", ["-u", "postgres", "--", exe, ...args]] : [exe, args];
  return new Promise((resolve, reject) => {
    execFile(
      file,
      argv,
      {
        cwd,
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 4 * 1024 * 1024,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LC_ALL: "C", LANG: "C" },
      },
      (err, stdout, stderr) => {
        if (err !== null) {
          const why = err.killed ? `killed after ${timeoutMs} ms` : `exit ${String(err.code)}`;
          reject(new Error(`${path.basename(exe)} ${args.join(" ")}: ${why}\n${stderr}${stdout}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/**
 * Creates and starts a private cluster, or says why it cannot (no server binaries, no `postgres` OS
 * user to run it as when we are root, initdb or start failing).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres | { skip: string }> {
  const bin = findServerBin();
  if (bin === undefined) return { skip: "no PostgreSQL server binaries" };
  const asPostgres = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (asPostgres) {
    owner = osUser("postgres");
    if (owner === undefined) return { skip: "running as root and there is no `postgres` OS user to run the server as" };
    if (!isExecutable("/usr/sbin/runuser") && !isExecutable("/sbin/runuser") && !isExecutable("/usr/bin/runuser")) {
      return { skip: "running as root and runuser is not available" };
    }
  }

  // /tmp/<x>: short, so the socket path stays below the 107-byte limit.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "ob-pg-"));
  const dataDir = path.join(base, "data");
  const sockDir = path.join(base, "sock");
  const logFile = path.join(base, "server.log");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.mkdirSync(sockDir, { mode: 0o700 });
  if (owner !== undefined) {
    for (const p of [base, dataDir, sockDir]) fs.chownSync(p, owner.uid, owner.gid);
  }
  const removeDirs = (): void => fs.rmSync(base, { recursive: true, force: true });
  const pgCtl = path.join(bin, "pg_ctl");

  let port = 0;
  let destroyed: Promise<void> | undefined;
  const serverLog = (): string => {
    try {
      return fs.readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "(no server log)";
    }
  };

  const start = async (): Promise<void> => {
    const opts = `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    try {
      await run(pgCtl, ["-D", dataDir, "-l", logFile, "-o", opts, "-w", "-t", "25", "start"], asPostgres, base);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nserver log:\n${serverLog()}`, { cause: e });
    }
  };
  const stop = async (mode: "fast" | "immediate" = "fast"): Promise<void> => {
    await run(pgCtl, ["-D", dataDir, "-m", mode, "-w", "-t", "25", "stop"], asPostgres, base);
  };

  try {
    await run(path.join(bin, "initdb"), ["-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], asPostgres, base, 60_000);
    // A port taken between our probe and the server's bind makes start fail: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await start();
        break;
      } catch (e) {
        if (attempt >= 3 || !/could not bind|Address already in use/i.test((e as Error).message)) throw e;
      }
    }
  } catch (e) {
    // Best effort: nothing may be left running or on disk.
    await run(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "-t", "10", "stop"], asPostgres, base, 15_000).catch(() => undefined);
    removeDirs();
    return { skip: `the private PostgreSQL cluster did not start: ${(e as Error).message}` };
  }

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    async restart(mode = "fast") {
      await stop(mode);
      await start();
    },
    destroy() {
      destroyed ??= (async () => {
        try {
          await run(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "-t", "10", "stop"], asPostgres, base, 15_000);
        } catch {
          // Already stopped, or pg_ctl could not stop it: kill the postmaster named in its pid file.
          try {
            const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
            if (Number.isInteger(pid) && pid > 0) process.kill(pid, "SIGKILL");
          } catch {
            // no pid file: not running
          }
        }
        removeDirs();
      })();
      return destroyed;
    },
  };
}
