import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The built-in samples of `orderbridge send` (src/cli/send.ts): JSON files in samples/, shipped with
 * the package like schemas/ and read at run time (from src through tsx and from dist alike, both one
 * level below the package root). The tests read the same files: samples/subscribe-pro/ holds the
 * spec's example callback request (§7) and orders for the demo catalog, samples/recharge/<version>/
 * Recharge's webhook payloads of both API versions, one per topic and the three orders of a prepaid
 * charge. Every read is a fresh copy with the file's own ids; `send` gives each invocation a new
 * `salesOrderToken` / Recharge order id.
 */

export const SAMPLES_DIR = fileURLToPath(new URL("../../samples/", import.meta.url));

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** The Subscribe Pro samples by name: their files in samples/subscribe-pro/. */
const SP = {
  // The spec's example request (§7).
  "full-order": "example-request.json",
  // One known SKU and one the catalog does not sell, with allowSomeFailedItems: placed in part (202).
  partial: "partial.json",
  // Only a SKU the catalog does not sell: nothing can be ordered (409).
  "unknown-sku": "unknown-sku.json",
  // The README's smallest valid order for the demo catalog.
  minimal: "minimal.json",
} as const;
export type SpSampleName = keyof typeof SP;
export const SP_SAMPLE_NAMES = Object.keys(SP) as SpSampleName[];

/** The Recharge samples by name: their files in samples/recharge/<version>/ and the topic they are sent under. */
const RECHARGE = {
  "order-created": { file: "order-created.json", topic: "order/created" },
  // A queued prepaid shipment that has now been processed.
  "order-processed": { file: "order-processed-prepaid-2.json", topic: "order/processed" },
  // order-updated.json before the write-back (external order id empty): that file is the echo of
  // our own write-back, which with a fresh order id would read as placed by another system.
  "order-updated": { file: "order-updated-not-synced.json", topic: "order/updated" },
  prepaid: { file: "order-created-prepaid-1.json", topic: "order/created" },
  queued: { file: "order-queued.json", topic: "order/created" },
  "checkout-processed": { file: "checkout-processed.json", topic: "checkout/processed" },
} as const;
export type RechargeSampleName = keyof typeof RECHARGE;
export const RECHARGE_SAMPLE_NAMES = Object.keys(RECHARGE) as RechargeSampleName[];
export type RechargeVersion = "2021-01" | "2021-11";

/** The file a built-in sample is read from. */
export function spSampleFile(name: SpSampleName): string {
  return path.join(SAMPLES_DIR, "subscribe-pro", SP[name]);
}

export function rechargeSampleFile(name: RechargeSampleName, version: RechargeVersion): string {
  return path.join(SAMPLES_DIR, "recharge", version, RECHARGE[name].file);
}

export function spSample(name: SpSampleName): JsonObject {
  return readJson(spSampleFile(name));
}

/** A Recharge sample in one API version, with the topic it is sent under by default. */
export function rechargeSample(name: RechargeSampleName, version: RechargeVersion): { topic: string; body: JsonObject } {
  return { topic: RECHARGE[name].topic, body: readJson(rechargeSampleFile(name, version)) };
}

function readJson(file: string): JsonObject {
  return JSON.parse(fs.readFileSync(file, "utf8")) as JsonObject;
}
