import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { PayloadError, type InvalidField } from "../errors.js";
import { currencyUnit, UNKNOWN_CURRENCY_MESSAGE } from "../money.js";
import { escapePointer } from "./json.js";

/** The folder of JSON Schemas shipped with orderbridge (same relative place from src/ and dist/). */
export const SCHEMA_DIR = fileURLToPath(new URL("../../schemas/", import.meta.url));

export interface Validator<T> {
  /** Returns the value typed as T, or throws a PayloadError listing every invalid field. */
  (value: unknown): T;
  readonly schemaId: string;
}

const MAX_REPORTED_ERRORS = 50;
const ISO_4217_FORMAT = "iso-4217";
/** Inputs with more values than this are answered with their first error only. */
const MAX_NODES_FOR_ALL_ERRORS = 5_000;

/** Counts the values in a parsed JSON value without recursion, stopping past `limit`. */
function countNodes(value: unknown, limit: number): number {
  let n = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && n <= limit) {
    const v = stack.pop();
    n++;
    if (v !== null && typeof v === "object") for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push(child);
  }
  return n;
}

/** One ajv instance; every schema in schemas/ is compiled once, at start-up. */
export function createSchemaRegistry(dir = SCHEMA_DIR) {
  // Two compilations of every schema: one stops at the first error (cheap on any input), one lists
  // every invalid field (for the answer). ajv's error collection grows quadratically with the number
  // of failing items, so the full list is only made for inputs of bounded size.
  const makeAjv = (allErrors: boolean): Ajv2020 => {
    const ajv = new Ajv2020({ allErrors, strict: true, allowUnionTypes: true, strictTypes: false });
    // The CJS plugin is its own default export at run time; the types describe the ESM shape.
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    // Currencies: the ISO 4217 table's, with a minor unit (src/money.ts), in any case.
    ajv.addFormat(ISO_4217_FORMAT, { type: "string", validate: (code: string) => currencyUnit(code) !== undefined });
    for (const file of files) ajv.addSchema(JSON.parse(fs.readFileSync(file, "utf8")) as object);
    return ajv;
  };
  const files = listSchemaFiles(dir);
  const ajv = makeAjv(true);
  const firstErrorAjv = makeAjv(false);

  return {
    /**
     * Compiles (once) the schema with this path below schemas/, e.g. "subscribe-pro/order-callback-request",
     * or one of its definitions: "subscribe-pro/order-callback-response#/$defs/placed".
     */
    validator<T>(name: string): Validator<T> {
      const [file, fragment] = name.split("#", 2);
      const id = `https://orderbridge.dev/schemas/${file ?? name}.schema.json${fragment === undefined ? "" : `#${fragment}`}`;
      const fn: ValidateFunction | undefined = ajv.getSchema(id);
      const fast: ValidateFunction | undefined = firstErrorAjv.getSchema(id);
      if (fn === undefined || fast === undefined) throw new Error(`schema ${id} is not in ${dir}`);
      const validate = ((value: unknown): T => {
        if (fast(value)) return value as T;
        const errors = countNodes(value, MAX_NODES_FOR_ALL_ERRORS) <= MAX_NODES_FOR_ALL_ERRORS && !fn(value) ? fn.errors : fast.errors;
        const fields = formatAjvErrors(errors ?? []);
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
        message = `must be ${String((e.params as { type: string | string[] }).type)
          .split(",")
          .join(" or ")}`;
        break;
      case "format":
        if ((e.params as { format?: string }).format === ISO_4217_FORMAT) message = UNKNOWN_CURRENCY_MESSAGE;
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
