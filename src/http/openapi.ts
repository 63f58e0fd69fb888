import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

/** openapi.yaml beside schemas/ (the same relative place from src/ and dist/). */
export const OPENAPI_FILE = fileURLToPath(new URL("../../openapi.yaml", import.meta.url));

type Json = unknown;

/** "schemas/subscribe-pro/order-callback-request.schema.json" → "SubscribeProOrderCallbackRequest". */
export function schemaComponentName(ref: string): string {
  return ref
    .replace(/^schemas\//, "")
    .replace(/\.schema\.json$/, "")
    .split(/[/-]/)
    .map((w) => (w === "" ? "" : w[0]?.toUpperCase() + w.slice(1)))
    .join("");
}

/**
 * The OpenAPI document with every `$ref` to a file in schemas/ replaced by a reference to
 * `components.schemas`, where the JSON Schema is embedded whole (its `$id` kept, so its own
 * references still resolve). Clients get one self-contained document.
 */
export function loadOpenApi(file = OPENAPI_FILE): Record<string, unknown> {
  const doc = YAML.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  const root = path.dirname(file);
  const components = (doc["components"] ??= {}) as Record<string, unknown>;
  const schemas = (components["schemas"] ??= {}) as Record<string, unknown>;
  const visit = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== "object") return node;
    const obj = node as Record<string, unknown>;
    const ref = obj["$ref"];
    if (typeof ref === "string" && ref.startsWith("schemas/")) {
      const name = schemaComponentName(ref);
      if (!(name in schemas)) schemas[name] = JSON.parse(fs.readFileSync(path.join(root, ref), "utf8")) as unknown;
      return { ...obj, $ref: `#/components/schemas/${name}` };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = visit(v);
    return out;
  };
  return visit(doc) as Record<string, unknown>;
}
