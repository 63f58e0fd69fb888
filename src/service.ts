import type express from "express";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { createApp } from "./http/app.js";
import { createLocalPlatform } from "./platforms/local/adapter.js";
import { loadCatalog } from "./platforms/local/catalog.js";
import { getOrder, listOrders } from "./platforms/local/orders-query.js";
import { openStore, type Store } from "./store/db.js";
import { createSubscribeProCallback } from "./subscribe-pro/callback.js";
import type { SpCallbackRequest } from "./subscribe-pro/types.js";
import type { PlatformAdapter } from "./orders/types.js";
import { createSchemaRegistry } from "./validation/schemas.js";

export interface Service {
  app: express.Express;
  store: Store;
  close(): Promise<void>;
}

/**
 * The composition root: the one place that picks concrete implementations (store, platform) and
 * wires them into the HTTP app. Used by main.ts and by the tests, with a real database.
 */
export interface ServiceOptions {
  clock?: () => number;
  /** Use this platform instead of the one PLATFORM names (embedding, stand-in platforms in tests). */
  platform?: PlatformAdapter;
}

export async function createService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  const schemas = createSchemaRegistry();
  const validateRequest = schemas.validator<SpCallbackRequest>("subscribe-pro/order-callback-request");
  const catalog = loadCatalog(config.catalogFile, schemas);
  const store = await openStore(config.database, log);
  try {
    const local = createLocalPlatform({
      db: store.db,
      catalog,
      orderNumberPrefix: config.orderNumbers.prefix,
      orderNumberStart: config.orderNumbers.start,
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    });
    await local.init();
    const platform = opts.platform ?? local;
    const handleCallback = createSubscribeProCallback({
      db: store.db,
      platform,
      validate: validateRequest,
      platformDeadlineMs: config.platform.deadlineMs,
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    });
    const app = createApp({
      config,
      log,
      spAuth: {
        mode: config.subscribePro.auth,
        secrets: config.subscribePro.hmacSecrets,
        allowlist: config.subscribePro.allowlist,
      },
      handleCallback,
      ping: () => store.ping(),
      orders: { list: (q) => listOrders(store.db, q), get: (n) => getOrder(store.db, n) },
    });
    return {
      app,
      store,
      async close() {
        await platform.close?.();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
