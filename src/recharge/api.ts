import { createHash } from "node:crypto";

/**
 * The name of a Recharge token's rate-limit bucket in the database: one per token (its hash, never
 * the token), shared by every instance and command using the database (the service's write-backs,
 * the sweep, `orderbridge recharge webhooks`).
 */
export function rechargeLimiterName(token: string): string {
  return `recharge:${createHash("sha256").update(token).digest("hex").slice(0, 16)}`;
}
