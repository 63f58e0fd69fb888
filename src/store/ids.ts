import { randomUUID } from "node:crypto";

/**
 * A row id that sorts by time: `prefix_`, `at` (epoch ms) in base 36, then `hexDigits` random hex
 * digits (at most 30). The random part comes from randomUUID, which draws from a buffer it refills
 * for 128 UUIDs at a time; randomBytes asked OpenSSL on every call, which showed in the order
 * path's profile (bench/analysis.md item 22). A version 4 UUID's hex digits are random but for the
 * version (the 13th) and the variant (the 17th, two bits of it): those are left out.
 *
 * @example timeSortedId("cb", 1764745200000) // "cb_mip0h5c0" + 12 hex digits
 */
export function timeSortedId(prefix: string, at: number, hexDigits = 12): string {
  const hex = randomUUID().replaceAll("-", "");
  const random = hex.slice(0, 12) + hex.slice(13, 16) + hex.slice(17);
  return `${prefix}_${at.toString(36)}${random.slice(0, hexDigits)}`;
}
