import { PayloadError, type InvalidField } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Deeper bodies are refused: no order nests this far, and deep values exhaust recursive code. */
export const MAX_JSON_DEPTH = 64;

/** Invalid fields reported at most (as for schema violations). */
const MAX_REPORTED = 50;

/**
 * U+0000 and unpaired UTF-16 surrogates. JSON.parse accepts both ("\u0000", "\ud800"), but no
 * store keeps them faithfully: PostgreSQL refuses U+0000 in text and jsonb and a lone surrogate in
 * jsonb, and turns one in text into U+FFFD; SQLite keeps U+0000 (where its own string functions
 * stop reading) and turns a lone surrogate into U+FFFD. The stores would differ, and a value would
 * not come back as it was sent. A surrogate pair (a character beyond U+FFFF) does not match.
 */
// eslint-disable-next-line no-control-regex -- U+0000 is one of the characters refused
const UNSTORABLE = /[\u0000\p{Cs}]/u;

/** Why text cannot be accepted as it is (the message of an invalid field), or undefined. */
export function unstorableText(s: string): string | undefined {
  if (!UNSTORABLE.test(s)) return undefined;
  return s.includes("\u0000") ? "must not contain the character U+0000 (NUL)" : "must not contain an unpaired UTF-16 surrogate (\\ud800-\\udfff without its other half)";
}

/** A JSON pointer (RFC 6901) reference token. */
export const escapePointer = (s: string): string => s.replace(/~/g, "~0").replace(/\//g, "~1");

interface Container {
  value: object;
  depth: number;
  parent: Container | undefined;
  /** The key or index under which `parent` holds it. */
  key: string;
}

function pointerOf(c: Container | undefined, key: string | number | undefined): string {
  const keys = key === undefined ? [] : [String(key)];
  for (let n = c; n !== undefined && n.parent !== undefined; n = n.parent) keys.push(n.key);
  return keys
    .reverse()
    .map((k) => `/${escapePointer(k)}`)
    .join("");
}

/**
 * One walk over a parsed JSON value, without recursion: its nesting depth (counting stops past
 * `limit`) and the pointers of strings and property names that cannot be stored (unstorableText).
 */
export function inspectJson(value: unknown, limit = MAX_JSON_DEPTH): { depth: number; unstorable: InvalidField[] } {
  const unstorable: InvalidField[] = [];
  const check = (text: string, where: Container | undefined, key: string | number | undefined, what: "" | "property name "): void => {
    if (unstorable.length >= MAX_REPORTED) return;
    const problem = unstorableText(text);
    if (problem !== undefined) unstorable.push({ pointer: pointerOf(where, key), message: `${what}${problem}` });
  };
  if (typeof value === "string") check(value, undefined, undefined, "");
  if (value === null || typeof value !== "object") return { depth: 0, unstorable };
  let max = 0;
  const stack: Container[] = [{ value, depth: 1, parent: undefined, key: "" }];
  while (stack.length > 0) {
    const c = stack.pop() as Container;
    if (c.depth > max) max = c.depth;
    if (max > limit) return { depth: max, unstorable };
    // An index becomes text only when it is needed (a 200 000-item array stays cheap).
    const visit = (child: unknown, key: string | number): void => {
      if (typeof child === "string") check(child, c, key, "");
      else if (child !== null && typeof child === "object") stack.push({ value: child, depth: c.depth + 1, parent: c, key: String(key) });
    };
    if (Array.isArray(c.value)) {
      c.value.forEach((child: unknown, i) => visit(child, i));
    } else {
      const o = c.value as Record<string, unknown>;
      for (const key of Object.keys(o)) {
        check(key, c, key, "property name ");
        visit(o[key], key);
      }
    }
  }
  return { depth: max, unstorable };
}

/**
 * Parses a request body as JSON. The bytes must be valid UTF-8 (a leading BOM is tolerated); the
 * message says where parsing failed. No string or property name in it may hold U+0000 or an
 * unpaired surrogate (unstorableText). Never re-serialise what this returns to check a signature.
 */
export function parseJsonBody(raw: Uint8Array): unknown {
  if (raw.byteLength === 0) throw new PayloadError("json_malformed", "The request body is empty; a JSON object was expected.");
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new PayloadError("json_malformed", "The request body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    throw new PayloadError("json_malformed", `The request body is not valid JSON: ${(e as Error).message}`);
  }
  const { depth, unstorable } = inspectJson(value);
  if (depth > MAX_JSON_DEPTH) {
    throw new PayloadError("json_malformed", `The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  // Refused before anything is stored, alike on both stores (a schema violation: the JSON is
  // well-formed, a value in it is not acceptable).
  if (unstorable.length > 0) {
    const shown = unstorable.slice(0, 3).map((f) => `${f.pointer || "(body)"} ${f.message}`);
    throw new PayloadError(
      "schema_violation",
      `The request body has text that cannot be accepted: ${shown.join("; ")}${unstorable.length > 3 ? ` (and ${unstorable.length - 3} more)` : ""}`,
      unstorable,
    );
  }
  return value;
}
