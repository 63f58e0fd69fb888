import cluster from "node:cluster";
import type { Server } from "node:http";
import { ensureCallbackSecret } from "./bootstrap.js";
import { describeConfig, loadConfig, misspeltSettingMessage, misspeltSettings, type Config } from "./config.js";
import { ConfigError } from "./errors.js";
import { listeningMessage, listeningUrl } from "./http/routes.js";
import { alreadyMasked, colourWanted, createLogger, type Logger } from "./logger.js";
import { serveClusterMetrics } from "./metrics.js";
import { tuneRuntime } from "./runtime.js";
import { createService } from "./service.js";

/** sysexits' EX_CONFIG: the configuration (or the address it names) is unusable. */
const EX_CONFIG = 78;

/**
 * Process entry: read config, then either serve here (WORKERS=1, and in each cluster worker) or, as
 * the cluster primary (WORKERS>1), fork the workers, replace any that dies, and stop them all
 * gracefully on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  tuneRuntime();
  let config: Config;
  try {
    config = loadConfig(process.env, { isTty: process.stdout.isTTY === true });
  } catch (e) {
    if (e instanceof ConfigError) {
      // A misspelt variable is often why a required one is missing (SP_HMAC_SECRET in production).
      const hints = misspeltSettings(process.env).map((m) => `orderbridge: warning: ${misspeltSettingMessage(m)}\n`);
      process.stderr.write(`orderbridge: refusing to start: ${e.message}\n${hints.join("")}`);
      process.exit(EX_CONFIG);
    }
    throw e;
  }
  const log = createLogger({ ...config.log, colour: colourWanted(process.stdout, process.env) }).child({ pid: process.pid });
  try {
    // In the primary first, so cluster workers find the secret instead of racing to create it.
    config = ensureCallbackSecret(config, log);
  } catch (e) {
    log.error("cannot prepare the callback secret", { error: (e as Error).message });
    process.exit(EX_CONFIG);
  }
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, log);
  return serve(config, log);
}

/** The start-up lines, written once per machine (by the cluster primary): the configuration, then any variable that looks misspelt. */
function logStart(config: Config, log: Logger): void {
  log.info("starting orderbridge", { config: alreadyMasked(describeConfig(config)) });
  for (const m of misspeltSettings(process.env)) log.warn(misspeltSettingMessage(m), { variable: m.name, suggestion: m.suggestion });
}

function runPrimary(config: Config, log: Logger): void {
  logStart(config, log);
  let stopping = false;
  const fork = (): void => {
    cluster.fork();
  };
  serveClusterMetrics();
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info("stopped");
        process.exit(process.exitCode ?? 0);
      }
      return;
    }
    if (code === EX_CONFIG) {
      // The configuration or the address stops every worker alike: replacing them would only
      // loop. Stop the others and exit as a single process would.
      stopping = true;
      log.error("a worker could not start with this configuration; stopping", { workerPid: worker.process.pid });
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      process.exitCode = EX_CONFIG;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(EX_CONFIG);
      setTimeout(() => process.exit(EX_CONFIG), config.shutdownTimeoutMs + 5_000).unref();
      return;
    }
    log.error("worker died; starting another", { workerPid: worker.process.pid, code, signal });
    // Not unref'd: with every worker gone, this timer is what keeps the primary alive to replace them.
    setTimeout(fork, 1000);
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal, workers: Object.keys(cluster.workers ?? {}).length });
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    // Past the workers' own deadline, make sure nothing is left behind.
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGKILL");
      process.exit(1);
    }, config.shutdownTimeoutMs + 5_000).unref();
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function serve(config: Config, log: Logger): Promise<void> {
  if (cluster.isPrimary) logStart(config, log);
  const service = await createService(config, log);
  // Without HOST, Node listens on every interface (IPv6 and IPv4 when the host has both).
  const server: Server = config.host === undefined ? service.app.listen(config.port) : service.app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", (e: NodeJS.ErrnoException) => reject(listenError(e, config)));
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address : { address: config.host ?? "::", port: config.port };
  const port = bound.port;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const deadline = config.shutdownTimeoutMs;
    log.info("shutting down: no new connections; finishing requests and jobs", { signal, deadlineMs: deadline });
    // Jobs and requests finish side by side, each within the deadline; jobs still running then go
    // back to the queue, connections still open are closed.
    const jobsStopped = service.worker.stop(deadline);
    const force = setTimeout(() => {
      log.warn("shutdown deadline passed: closing remaining connections");
      server.closeAllConnections();
    }, deadline);
    force.unref();
    // A keep-alive connection becomes idle once its last response is sent: close it then.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(sweep);
      void jobsStopped
        .then(() => service.close())
        .then(
          () => {
            log.info("stopped");
            process.exit(0);
          },
          (e: unknown) => {
            log.error("error while closing the database", { error: String(e) });
            process.exit(1);
          },
        );
    });
    server.closeIdleConnections();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // Announced only now: whoever waits for this line (a supervisor, a test) may signal at once, and
  // a signal before the handlers exist would kill the process instead of stopping it.
  const url = listeningUrl(bound, config.host);
  const on = { recharge: config.recharge.clientSecrets.length > 0, admin: config.adminToken !== undefined };
  log.info(listeningMessage(url, on), { url: url.url, port, database: service.store.kind, worker: cluster.isWorker });
}

/** A listen failure the configuration causes (HOST, PORT) as a ConfigError that says what to change. */
function listenError(e: NodeJS.ErrnoException, config: Config): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: "the port is already in use (set PORT to a free one)",
    EACCES: "permission denied (ports below 1024 need privileges; set PORT)",
    EADDRNOTAVAIL: "this machine has no such address (set HOST to one of its addresses, or leave it unset)",
    ENOTFOUND: "the host name does not resolve (set HOST to an address or a resolvable name)",
    EAI_AGAIN: "the host name could not be resolved now (set HOST to an address)",
  };
  const reason = e.code === undefined ? undefined : reasons[e.code];
  if (reason === undefined) return e;
  return new ConfigError(`cannot listen on ${config.host ?? "all interfaces"}, port ${config.port}: ${reason}`, { cause: e });
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`orderbridge: failed to start: ${message}\n`);
  process.exit(e instanceof ConfigError ? EX_CONFIG : 1);
});
