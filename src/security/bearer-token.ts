import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * A check of an `Authorization: Bearer <token>` header. Both sides are hashed to one length and
 * compared in constant time, so neither the token nor its length leaks through timing.
 */
export function bearerTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    const m = /^Bearer (.+)$/i.exec(authorization ?? "");
    const given = digest(m?.[1]?.trim() ?? "");
    return m !== null && timingSafeEqual(given, expected);
  };
}
