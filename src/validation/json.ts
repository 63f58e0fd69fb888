import { PayloadError } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

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
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new PayloadError("json_malformed", `The request body is not valid JSON: ${(e as Error).message}`);
  }
}
