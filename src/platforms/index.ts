import { pathToFileURL } from "node:url";
import type { Config } from "../config.js";
import { ConfigError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { PlatformAdapter } from "../orders/types.js";
import type { SchemaRegistry } from "../validation/schemas.js";
import { createHttpPlatform, type HttpOrderResponse } from "./http/adapter.js";
import { createShopifyPlatform } from "./shopify/adapter.js";

/** What a custom adapter module's `createPlatform` is given. */
export interface PlatformModuleContext {
  /** The environment, for the adapter's own settings (read them once, here). */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** One request's timeout (PLATFORM_TIMEOUT_MS). */
  timeoutMs: number;
}

/** Picks the platform PLATFORM names. `local` is built by the caller (it needs the database). */
export async function createPlatform(
  config: Config["platform"],
  deps: { local: PlatformAdapter; schemas: SchemaRegistry; log: Logger; clock: () => number; env: Readonly<Record<string, string | undefined>> },
): Promise<PlatformAdapter> {
  if (config.http !== undefined) {
    return createHttpPlatform({
      url: config.http.url,
      cartUrl: config.http.cartUrl,
      secret: config.http.secret,
      timeoutMs: config.timeoutMs,
      validateResponse: deps.schemas.validator<HttpOrderResponse>("platform-http/order-response"),
      clock: deps.clock,
    });
  }
  if (config.shopify !== undefined) {
    return createShopifyPlatform({ ...config.shopify, timeoutMs: config.timeoutMs, clock: deps.clock });
  }
  if (config.modulePath !== undefined) return loadPlatformModule(config.modulePath, { env: deps.env, log: deps.log, timeoutMs: config.timeoutMs });
  return deps.local;
}

/**
 * Loads an adapter from a module: its `createPlatform(context)` (or default export) returns a
 * PlatformAdapter, or a promise of one. Anything else stops the start with a clear message.
 */
export async function loadPlatformModule(file: string, ctx: PlatformModuleContext): Promise<PlatformAdapter> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`PLATFORM: cannot load the adapter module ${file}: ${(e as Error).message}`);
  }
  const factory = mod["createPlatform"] ?? mod["default"];
  if (typeof factory !== "function") {
    throw new ConfigError(`PLATFORM: ${file} must export a function createPlatform(context) (or a default export) returning a PlatformAdapter`);
  }
  const adapter = (await (factory as (c: PlatformModuleContext) => unknown)(ctx)) as Partial<PlatformAdapter> | null;
  if (adapter === null || typeof adapter !== "object" || typeof adapter.name !== "string" || typeof adapter.createOrder !== "function") {
    throw new ConfigError(`PLATFORM: createPlatform of ${file} must return an object with a string name and a createOrder(order, context) method`);
  }
  return adapter as PlatformAdapter;
}
