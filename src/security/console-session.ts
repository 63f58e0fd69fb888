import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The console's session cookie and CSRF token, derived from the admin token (pure; no store): a
 * cookie is `<session id>.<expiry>.<mac>`, valid on every instance that has the same ADMIN_TOKEN,
 * until it expires or its session signs out (the store's action log, checked by the console).
 * Changing ADMIN_TOKEN ends every session.
 */
export interface ConsoleSessions {
  /** A new session's id and cookie value. */
  issue(now: number): { sessionId: string; cookie: string; expiresAt: number };
  /** The session of a cookie value, when it is genuine and not expired. */
  verify(cookie: string | undefined, now: number): { sessionId: string; expiresAt: number } | undefined;
  /** The CSRF token of a session: every state-changing form carries it. */
  csrfToken(sessionId: string): string;
  checkCsrf(sessionId: string, given: unknown): boolean;
}

const b64 = (b: Buffer): string => b.toString("base64url");
const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export function consoleSessions(adminToken: string, o: { ttlMs: number }): ConsoleSessions {
  const key = createHmac("sha256", "orderbridge console session").update(adminToken).digest();
  const mac = (text: string): string => b64(createHmac("sha256", key).update(text).digest());
  const csrfToken = (sessionId: string): string => mac(`csrf.${sessionId}`);
  return {
    issue(now) {
      const sessionId = `ses_${b64(randomBytes(12))}`;
      const expiresAt = now + o.ttlMs;
      return { sessionId, expiresAt, cookie: `${sessionId}.${expiresAt}.${mac(`${sessionId}.${expiresAt}`)}` };
    },
    verify(cookie, now) {
      const m = /^(ses_[A-Za-z0-9_-]{16})\.(\d{13,15})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? "");
      if (m === null) return undefined;
      const [, sessionId, exp, given] = m as unknown as [string, string, string, string];
      if (!same(mac(`${sessionId}.${exp}`), given)) return undefined;
      const expiresAt = Number(exp);
      return expiresAt > now ? { sessionId, expiresAt } : undefined;
    },
    csrfToken,
    checkCsrf: (sessionId, given) => typeof given === "string" && same(csrfToken(sessionId), given),
  };
}
