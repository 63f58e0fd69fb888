import { isIP } from "node:net";

/** The paths the app serves (src/http/app.ts), named once for it and for the start-up line. */
export const ROUTES = {
  subscribeProCallback: "/callbacks/subscribe-pro/order",
  rechargeWebhooks: "/webhooks/recharge",
  rechargeWebhooksByTopic: "/webhooks/recharge/*topic",
  admin: "/admin",
  metrics: "/metrics",
} as const;

/**
 * The URL a local client reaches the listening server at. Listening on every interface (no HOST:
 * `::` or `0.0.0.0`) it is localhost's, and `everyInterface` says so; an IPv6 address is bracketed.
 */
export function listeningUrl(address: { address: string; port: number }, host: string | undefined): { url: string; everyInterface: boolean } {
  const everyInterface = address.address === "::" || address.address === "0.0.0.0";
  const name = everyInterface ? "localhost" : host !== undefined && isIP(host) === 0 ? host : address.address;
  return { url: `http://${isIP(name) === 6 ? `[${name}]` : name}:${address.port}`, everyInterface };
}

/** The start-up line: where the service listens, and what it serves there (what is off and why). */
export function listeningMessage(url: { url: string; everyInterface: boolean }, on: { recharge: boolean; admin: boolean }): string {
  return (
    `orderbridge listening on ${url.url}${url.everyInterface ? " (every interface)" : ""} — ` +
    `Subscribe Pro callback POST ${ROUTES.subscribeProCallback}, ` +
    `Recharge webhooks ${on.recharge ? `POST ${ROUTES.rechargeWebhooks} (or ${ROUTES.rechargeWebhooks}/<topic>)` : "off (no RECHARGE_CLIENT_SECRETS)"}, ` +
    `admin ${on.admin ? ROUTES.admin : "off (no ADMIN_TOKEN)"}, ` +
    `metrics ${ROUTES.metrics}`
  );
}
