#!/usr/bin/env node
// The container's HEALTHCHECK: GET /readyz on the address the service listens on (HOST, PORT).
// Ready, not merely up: /readyz answers 503 while the database does not answer, and /healthz would
// call such an instance healthy. Without HOST, or with a wildcard, the service listens on every
// interface: ask the loopback. What it prints is what `docker inspect` shows as the check's output.
const port = process.env.PORT || "3000";
const host = (process.env.HOST ?? "").trim();
const target = host === "" || host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
const url = `http://${target}:${port}/readyz`;
fetch(url, { signal: AbortSignal.timeout(4000) }).then(
  async (r) => {
    const body = (await r.text().catch(() => "")).slice(0, 200);
    process.stdout.write(`${url}: ${r.status} ${body}\n`);
    process.exit(r.ok ? 0 : 1);
  },
  (e) => {
    process.stdout.write(`${url}: ${e instanceof Error ? (e.cause?.message ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
