import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { startService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// The image's HEALTHCHECK (scripts/healthcheck.mjs) against the real service on loopback: healthy
// means ready, so an instance whose database does not answer is unhealthy (a proxy or orchestrator
// that trusts the health check then sends it nothing).
const SCRIPT = fileURLToPath(new URL("../../scripts/healthcheck.mjs", import.meta.url));

function healthcheck(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [SCRIPT], { env: { PATH: process.env["PATH"] ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

for (const { kind, skip } of await storeKinds()) {
  describe(`HEALTHCHECK [${kind}]`, { skip }, () => {
    it("is healthy when ready, and unhealthy while the database does not answer", async () => {
      const t = await startService(kind);
      const server = http.createServer(t.app);
      const { port } = new URL(await listen(server));
      try {
        // HOST unset or a wildcard: the service listens everywhere, the check asks the loopback.
        for (const host of [undefined, "0.0.0.0", "127.0.0.1"]) {
          const ok = await healthcheck({ PORT: port, ...(host === undefined ? {} : { HOST: host }) });
          assert.equal(ok.code, 0, `HOST=${host ?? "(unset)"}: ${ok.output}`);
          assert.match(ok.output, /\/readyz: 200 /);
        }
        await t.store.close();
        const down = await healthcheck({ PORT: port });
        assert.equal(down.code, 1, down.output);
        assert.match(down.output, /\/readyz: 503 .*The database does not answer/);
      } finally {
        await close(server);
        await t.stop().catch(() => undefined);
      }
    });
  });
}

describe("HEALTHCHECK without a service", () => {
  it("is unhealthy, saying why", async () => {
    const server = http.createServer();
    const { port } = new URL(await listen(server));
    await close(server);
    const r = await healthcheck({ PORT: port });
    assert.equal(r.code, 1);
    assert.match(r.output, /ECONNREFUSED/);
  });
});
