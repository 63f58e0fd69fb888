import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { PayloadError, type InvalidField } from "../errors.js";

/** The folder of JSON Schemas shipped with orderbridge (same relative place from src/ and dist/). */
export const SCHEMA_DIR = fileURLToPath(new URL("../../schemas/", import.meta.url));

export interface Validator<T> {
  /** Returns the value typed as T, or throws a PayloadError listing every invalid field. */
  (value: unknown): T;
  readonly schemaId: string;
}

const MAX_REPORTED_ERRORS = 50;

/** One ajv instance; every schema in schemas/ is compiled once, at start-up. */
export function createSchemaRegistry(dir = SCHEMA_DIR) {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, strictTypes: false });
  // The CJS plugin is its own default export at run time; the types describe the ESM shape.
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  const files = listSchemaFiles(dir);
  for (const file of files) ajv.addSchema(JSON.parse(fs.readFileSync(file, "utf8")) as object);

  return {
    /** Compiles (once) the schema with this path below schemas/, e.g. "subscribe-pro/order-callback-request". */
    validator<T>(name: string): Validator<T> {
      const id = `https://orderbridge.dev/schemas/${name}.schema.json`;
      const fn: ValidateFunction | undefined = ajv.getSchema(id);
      if (fn === undefined) throw new Error(`schema ${id} is not in ${dir}`);
      const validate = ((value: unknown): T => {
        if (fn(value)) return value as T;
        const fields = formatAjvErrors(fn.errors ?? []);
        throw new PayloadError(
          "schema_violation",
          `The request body does not match the schema: ${fields
            .slice(0, 3)
            .map((f) => `${f.pointer || "(body)"} ${f.message}`)
            .join("; ")}${fields.length > 3 ? ` (and ${fields.length - 3} more)` : ""}`,
          fields,
        );
      }) as Validator<T>;
      Object.defineProperty(validate, "schemaId", { value: id });
      return validate;
    },
  };
}

export type SchemaRegistry = ReturnType<typeof createSchemaRegistry>;

function listSchemaFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir.replace(/\/$/, "")}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listSchemaFiles(p));
    else if (entry.name.endsWith(".schema.json")) out.push(p);
  }
  return out.sort();
}

const escapePointer = (s: string): string => s.replace(/~/g, "~0").replace(/\//g, "~1");

/** ajv errors → one entry per invalid field, with its JSON pointer and a plain message. */
export function formatAjvErrors(errors: readonly ErrorObject[]): InvalidField[] {
  const seen = new Set<string>();
  const out: InvalidField[] = [];
  for (const e of errors) {
    let pointer = e.instancePath;
    let message = e.message ?? "is invalid";
    switch (e.keyword) {
      case "required":
        pointer = `${e.instancePath}/${escapePointer(String((e.params as { missingProperty: string }).missingProperty))}`;
        message = "is required";
        break;
      case "type":
        message = `must be ${String((e.params as { type: string | string[] }).type).split(",").join(" or ")}`;
        break;
      case "anyOf":
      case "oneOf":
        continue; // the branch errors already say what is wrong
      default:
        break;
    }
    const key = `${pointer} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pointer, message });
    if (out.length >= MAX_REPORTED_ERRORS) break;
  }
  return out;
}
