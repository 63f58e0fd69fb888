import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import request from "supertest";
import { loadConfig, type Config } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { createService, type Service, type ServiceOptions } from "../../src/service.js";
import type { CatalogFile } from "../../src/platforms/local/catalog.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { freshDatabase, type StoreKind } from "./stores.js";

export const SECRET = "sp_shared_secret_example";
export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const CALLBACK = "/callbacks/subscribe-pro/order";
const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

export interface TestService extends Service {
  config: Config;
  dataDir: string;
  /** Every log line written so far (JSON text). */
  logs: string[];
  /** POSTs a callback body (an object is serialised compactly), signed with SECRET unless told otherwise. */
  callback(body: unknown, opts?: { secret?: string | null; headers?: Record<string, string> }): Promise<request.Response>;
  admin(url: string): Promise<request.Response>;
  count(table: "local_orders" | "local_order_items" | "sp_callbacks"): Promise<number>;
  stop(): Promise<void>;
}

const responseSchema = createSchemaRegistry().validator("subscribe-pro/order-callback-response");

/** Asserts a callback answer is JSON valid against schemas/subscribe-pro/order-callback-response. */
export function assertValidCallbackResponse(res: request.Response): void {
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  try {
    responseSchema(res.body);
  } catch (e) {
    assert.fail(`response ${res.status} does not match the response schema: ${(e as Error).message}\n${res.text}`);
  }
}

export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8")) as T;
}

/** A fixture file's exact bytes (to be sent, and signed, as they are). */
export function fixtureBytes(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, name));
}

export interface StartOptions extends ServiceOptions {
  env?: Record<string, string>;
  catalog?: CatalogFile;
}

export async function startService(kind: StoreKind, o: StartOptions = {}): Promise<TestService> {
  const db = freshDatabase(kind);
  const env: Record<string, string> = {
    NODE_ENV: "test",
    SP_HMAC_SECRETS: SECRET,
    ADMIN_TOKEN,
    LOG_LEVEL: "debug",
    LOG_FORMAT: "json",
    ...db.env,
    ...o.env,
  };
  if (o.catalog !== undefined) {
    env["CATALOG_FILE"] = path.join(db.dataDir, "catalog.json");
    fs.writeFileSync(env["CATALOG_FILE"], JSON.stringify(o.catalog));
  }
  const config = loadConfig(env);
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
  const log = createLogger({ level: "debug", format: "json", stream });
  const { env: _e, catalog: _c, ...serviceOpts } = o;
  let service: Service;
  try {
    service = await createService(config, log, serviceOpts);
  } catch (e) {
    await db.cleanup();
    throw e;
  }
  let stopped = false;
  return {
    ...service,
    config,
    dataDir: db.dataDir,
    logs,
    callback(body, opts = {}) {
      const raw = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      const secret = opts.secret === undefined ? SECRET : opts.secret;
      // serialize(identity): superagent would JSON-encode a Buffer; the bytes must go out as they are.
      let req = request(service.app)
        .post(CALLBACK)
        .set("Content-Type", "application/json")
        .serialize((x: unknown) => x as string);
      if (secret !== null) req = req.set("Sp-Hmac", signSpHmac(secret, raw));
      for (const [k, v] of Object.entries(opts.headers ?? {})) req = req.set(k, v);
      return req.send(raw).then((res) => {
        assertValidCallbackResponse(res);
        return res;
      });
    },
    admin(url) {
      return request(service.app)
        .get(url)
        .set("Authorization", `Bearer ${ADMIN_TOKEN}`)
        .then((r) => r);
    },
    async count(table) {
      const row = await service.store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.close();
      await db.cleanup();
    },
  };
}

/** The smallest valid callback body for the demo catalog; override fields or items as needed. */
export function minimalOrder(
  token: string,
  items: Record<string, unknown>[] = [{ productSku: "RUBY-RED", qty: 1, subscription: { id: "s" } }],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    customerId: "1",
    customerEmail: "a@example.com",
    platformCustomerId: "P1",
    salesOrderToken: token,
    currency: "USD",
    payment: {},
    shippingAddress: { city: "X" },
    items,
    ...extra,
  };
}
