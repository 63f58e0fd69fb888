/**
 * A stable text for a parsed JSON value: object keys sorted, no whitespace. Two bodies that differ
 * only in formatting or key order give the same text. Builds the string directly (never an object),
 * so keys such as "__proto__" are handled as plain data.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}
