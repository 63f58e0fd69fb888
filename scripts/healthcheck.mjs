#!/usr/bin/env node
// The container's HEALTHCHECK: GET /healthz on the address the service listens on (HOST, PORT).
// Without HOST, or with a wildcard, the service listens on every interface: ask the loopback.
const port = process.env.PORT || "3000";
const host = (process.env.HOST ?? "").trim();
const target = host === "" || host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
fetch(`http://${target}:${port}/healthz`, { signal: AbortSignal.timeout(4000) }).then(
  (r) => process.exit(r.ok ? 0 : 1),
  () => process.exit(1),
);
