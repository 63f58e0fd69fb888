import type { Server } from "node:http";
import { ensureCallbackSecret } from "./bootstrap.js";
import { describeConfig, loadConfig } from "./config.js";
import { ConfigError } from "./errors.js";
import { createLogger } from "./logger.js";
import { createService } from "./service.js";

/** Process entry: read config, start the service, stop gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, { isTty: process.stdout.isTTY === true });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`orderbridge: refusing to start: ${e.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
  const log = createLogger(config.log);
  try {
    config = ensureCallbackSecret(config, log);
  } catch (e) {
    log.error("cannot prepare the callback secret", { error: (e as Error).message });
    process.exit(78);
  }
  log.info("starting orderbridge", { config: describeConfig(config) });
  const service = await createService(config, log);
  // Without HOST, Node listens on every interface (IPv6 and IPv4 when the host has both).
  const server: Server = config.host === undefined ? service.app.listen(config.port) : service.app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  log.info(`orderbridge listening on port ${port}`, { port, database: service.store.kind });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    const force = setTimeout(() => {
      log.warn("shutdown deadline passed: closing remaining connections");
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    server.close(() => {
      void service.close().then(
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
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`orderbridge: failed to start: ${message}\n`);
  process.exit(e instanceof ConfigError ? 78 : 1);
});
