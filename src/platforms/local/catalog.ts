import fs from "node:fs";
import { ConfigError, PayloadError } from "../../errors.js";
import { currencyExponent, parseDecimal, parseRatePpm } from "../../money.js";
import type { SchemaRegistry } from "../../validation/schemas.js";

export interface Product {
  sku: string;
  name: string;
  /** Minor units of the catalog currency. */
  price: number;
  taxRatePpm: number;
  requiresShipping: boolean;
  /** Initial stock; undefined when stock is not tracked. */
  stock: number | undefined;
  salable: boolean;
}

export interface ShippingMethod {
  perOrder: number;
  perLine: number;
  perUnit: number;
}

export interface Catalog {
  currency: string;
  products: ReadonlyMap<string, Product>;
  shippingMethods: ReadonlyMap<string, ShippingMethod>;
}

type Amount = string | number;
export interface CatalogFile {
  currency?: string;
  products: {
    sku: string;
    name: string;
    price: Amount;
    taxRate?: Amount;
    requiresShipping?: boolean;
    stock?: number;
    salable?: boolean;
  }[];
  shippingMethods?: Record<string, { perOrder?: Amount; perLine?: Amount; perUnit?: Amount }>;
}

/**
 * The catalog used when CATALOG_FILE is unset: every SKU that appears in the examples of shared/spec
 * and the seeds, with untracked stock. RUBY-RED, EARL-GREY and ups_ground reproduce the totals of
 * the Subscribe Pro response examples (shared/spec/subscribe-pro-order-callback.md §7).
 */
export const DEMO_CATALOG: CatalogFile = {
  currency: "USD",
  products: [
    { sku: "RUBY-RED", name: "Ruby Red Black Tea", price: "10.00", taxRate: "0.09" },
    { sku: "EARL-GREY", name: "Earl Grey Tea", price: "12.00", taxRate: "0.0834" },
    { sku: "CLO123", name: "Recharge Logo Shirt - Small", price: "12.22", taxRate: "0" },
    { sku: "CLO124", name: "Recharge Logo Shirt - Medium", price: "12.22", taxRate: "0" },
    { sku: "MILK-1", name: "Milk", price: "12.00", taxRate: "0" },
    { sku: "TOM0001", name: "Sample Product TOM0001", price: "10.00", taxRate: "0" },
    { sku: "kRaViCah-1", name: "Powder Milk", price: "5.00", taxRate: "0" },
  ],
  shippingMethods: {
    default: {},
    ups_ground: { perLine: "0.60", perUnit: "1.20" },
    flat_rate: { perOrder: "5.00" },
    free_shipping: {},
    subscribepro_recurring: {},
  },
};

/** Validates a catalog document against schemas/local/catalog.schema.json and compiles it. */
export function compileCatalog(doc: unknown, schemas: SchemaRegistry, origin: string): Catalog {
  let file: CatalogFile;
  try {
    file = schemas.validator<CatalogFile>("local/catalog")(doc);
  } catch (e) {
    if (e instanceof PayloadError) {
      throw new ConfigError(`${origin} is not a valid catalog: ${e.fields.map((f) => `${f.pointer || "/"} ${f.message}`).join("; ")}`);
    }
    throw e;
  }
  const currency = file.currency ?? "USD";
  const exp = currencyExponent(currency);
  const amount = (v: Amount | undefined, where: string): number => {
    const n = v === undefined ? 0 : parseDecimal(v, exp);
    if (n === undefined || n < 0) throw new ConfigError(`${origin}: ${where} is not a valid amount`);
    // A price finer than the currency's smallest unit would be rounded silently: say so instead.
    const extra = /\.(\d*)$/.exec(String(v ?? "").trim())?.[1]?.slice(exp) ?? "";
    if (/[1-9]/.test(extra)) {
      throw new ConfigError(`${origin}: ${where} (${String(v)}) has more decimals than ${currency} has (${exp})`);
    }
    return n;
  };
  const products = new Map<string, Product>();
  file.products.forEach((p, i) => {
    if (products.has(p.sku)) throw new ConfigError(`${origin}: /products/${i} repeats SKU ${p.sku}`);
    const rate = p.taxRate === undefined ? 0 : parseRatePpm(p.taxRate);
    if (rate === undefined || rate > 1_000_000) throw new ConfigError(`${origin}: /products/${i}/taxRate must be a fraction from 0 to 1`);
    products.set(p.sku, {
      sku: p.sku,
      name: p.name,
      price: amount(p.price, `/products/${i}/price`),
      taxRatePpm: rate,
      requiresShipping: p.requiresShipping ?? true,
      stock: p.stock,
      salable: p.salable ?? true,
    });
  });
  const shippingMethods = new Map<string, ShippingMethod>();
  for (const [code, m] of Object.entries(file.shippingMethods ?? {})) {
    shippingMethods.set(code, {
      perOrder: amount(m.perOrder, `/shippingMethods/${code}/perOrder`),
      perLine: amount(m.perLine, `/shippingMethods/${code}/perLine`),
      perUnit: amount(m.perUnit, `/shippingMethods/${code}/perUnit`),
    });
  }
  return { currency, products, shippingMethods };
}

/** Reads CATALOG_FILE, or returns the demo catalog when none is configured. */
export function loadCatalog(file: string | undefined, schemas: SchemaRegistry): Catalog {
  if (file === undefined) return compileCatalog(DEMO_CATALOG, schemas, "the demo catalog");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`CATALOG_FILE ${file} cannot be read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`CATALOG_FILE ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return compileCatalog(doc, schemas, `CATALOG_FILE ${file}`);
}
