import type { NormalizedOrder } from "../orders/types.js";

/**
 * Removing known sensitive values (a request's payment token, a remote credential) from free text,
 * such as what a remote platform wrote in an error body. The logger's key-name redaction cannot do
 * this: a token inside a sentence has no key. Pure; nothing is compiled until a text is scrubbed.
 */
export const REDACTED = "[redacted]";

/**
 * Shorter values are left alone: a one- to three-character value (a paymentProfileId of 12) cannot
 * be told apart from the digits and words around it (replacing it would blank out every "12" of a
 * text), and carries too little to be worth stealing.
 */
export const MIN_SCRUBBED_LENGTH = 4;

export interface Scrub {
  /** The text with every occurrence of the values (any case, also JSON- or URL-escaped) replaced by "[redacted]". */
  (text: string): string;
  /** The first `max` characters of the scrubbed text ("…" when cut); a value cut by the limit is never left in part. */
  excerpt(text: string, max: number): string;
  /** A scrubber for these values and more (an adapter adds its own credentials to the order's). */
  with(values: Iterable<string | undefined>): Scrub;
  /** The values scrubbed (those long enough), as given. */
  readonly values: readonly string[];
}

export function scrubber(values: Iterable<string | undefined>): Scrub {
  const given: string[] = [];
  const kept = new Set<string>();
  for (const v of values) {
    if (v === undefined || v.length < MIN_SCRUBBED_LENGTH) continue;
    given.push(v);
    kept.add(v);
    // The forms a remote is likely to echo a value in: inside a JSON string, inside a URL.
    kept.add(JSON.stringify(v).slice(1, -1));
    try {
      kept.add(encodeURIComponent(v));
    } catch {
      /* a lone surrogate: no URL form */
    }
  }
  const list = [...kept];
  let re: RegExp | null | undefined;
  const pattern = (): RegExp | null => {
    if (re !== undefined) return re;
    // Longest first, so a value that contains another is replaced whole.
    const alternatives = [...list].sort((a, b) => b.length - a.length).map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    re = alternatives.length === 0 ? null : new RegExp(alternatives.join("|"), "gi");
    return re;
  };
  const scrub = ((text: string): string => {
    const p = pattern();
    return p === null ? text : text.replace(p, REDACTED);
  }) as Scrub;
  scrub.excerpt = (text: string, max: number): string => {
    const p = pattern();
    let out = "";
    let at = 0;
    if (p !== null) {
      // Match by match until `max` characters are out: the plain text between two matches holds
      // no start of a value (the search would have found it), so cutting it leaves no part of one.
      p.lastIndex = 0;
      for (let m = p.exec(text); m !== null && out.length <= max; m = p.exec(text)) {
        out += text.slice(at, m.index) + REDACTED;
        at = m.index + m[0].length;
      }
      p.lastIndex = 0;
    }
    out += text.slice(at, at + max + 1);
    return out.length > max ? `${out.slice(0, max)}…` : out;
  };
  scrub.with = (more) => scrubber([...given, ...more]);
  Object.defineProperty(scrub, "values", { value: given });
  return scrub;
}

/** Scrubs nothing. */
export const noScrub: Scrub = scrubber([]);

/**
 * The values of an order that must never reach a log or an answer as text: every payment value
 * (tokens, profile ids; the leaves of a payment field that holds JSON too), and the customer's
 * email when LOG_REDACT_EMAIL asks for it.
 */
export function sensitiveValues(order: Pick<NormalizedOrder, "payment" | "customer">, o: { email: boolean }): string[] {
  const out: string[] = [];
  const leaves = (v: unknown): void => {
    if (typeof v === "string") out.push(v);
    else if (typeof v === "number" || typeof v === "bigint") out.push(String(v));
    else if (Array.isArray(v)) v.forEach(leaves);
    else if (v !== null && typeof v === "object") Object.values(v).forEach(leaves);
  };
  for (const value of Object.values(order.payment ?? {})) {
    out.push(value);
    // Nested payment properties travel as their JSON text (src/subscribe-pro/map-request.ts).
    if (/^\s*[[{]/.test(value)) {
      try {
        leaves(JSON.parse(value));
      } catch {
        /* not JSON after all: the value itself is kept */
      }
    }
  }
  if (o.email && order.customer.email !== "") out.push(order.customer.email);
  return out;
}

/**
 * The request id a remote answered with (`X-Request-Id`), for the caller to quote to the remote's
 * operator: only a plain token that holds none of the scrubbed values.
 */
export function remoteRequestId(header: unknown, scrub: Scrub): string | undefined {
  const v = Array.isArray(header) ? (header as unknown[])[0] : header;
  return typeof v === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(v) && scrub(v) === v ? v : undefined;
}
