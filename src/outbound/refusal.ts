import { PlatformError } from "../errors.js";
import { remoteRequestId, type Scrub } from "../security/scrub.js";
import type { OutboundResponse } from "./http-client.js";

/** How much of a remote's answer a log or a job's last error keeps. */
export const EXCERPT_CHARS = 300;

/**
 * A remote answer we do not accept, as our typed error: the message is our own words with the
 * remote's request id (when it is a plain token that quotes nothing scrubbed); what the remote said
 * goes to `detail`, scrubbed, for logs only (a remote error text may quote the values it was sent).
 */
export function refusal(
  message: string,
  res: Pick<OutboundResponse, "headers" | "text">,
  scrub: Scrub,
  o: { retryable: boolean; notPlaced?: boolean; said?: string; suffix?: string },
): PlatformError {
  const rid = remoteRequestId(res.headers["x-request-id"], scrub);
  return new PlatformError(`${message}${rid === undefined ? "" : ` (request id ${rid})`}${o.suffix ?? ""}`, o.retryable, {
    ...(o.notPlaced === undefined ? {} : { notPlaced: o.notPlaced }),
    detail: scrub.excerpt(o.said ?? res.text, EXCERPT_CHARS) || undefined,
  });
}
