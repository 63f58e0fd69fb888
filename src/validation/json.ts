import { PayloadError } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Deeper bodies are refused: no order nests this far, and deep values exhaust recursive code. */
export const MAX_JSON_DEPTH = 64;

/** The nesting depth of a parsed JSON value, walked without recursion; stops counting past `limit`. */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === "object") stack.push([child, d + 1]);
    }
  }
  return max;
}

/**
 * Parses a request body as JSON. The bytes must be valid UTF-8 (a leading BOM is tolerated); the
 * message says where parsing failed. Never re-serialise what this returns to check a signature.
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
  if (jsonDepth(value) > MAX_JSON_DEPTH) {
    throw new PayloadError("json_malformed", `The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  return value;
}
