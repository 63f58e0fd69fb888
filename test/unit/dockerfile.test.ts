import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

// `docker build` cannot run here; these pin what the Dockerfile must keep, and that
// scripts/docker-mirror.sh (run by CI) repeats the same steps.
const dockerfile = fs.readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
const mirror = fs.readFileSync(new URL("../../scripts/docker-mirror.sh", import.meta.url), "utf8");
const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { files: string[] };
const stages = dockerfile.split(/^FROM /m).slice(1);
const runtime = stages[stages.length - 1] ?? "";

describe("Dockerfile", () => {
  it("is multi-stage and builds with the lockfile", () => {
    assert.ok(stages.length >= 2, "at least a build and a runtime stage");
    assert.match(stages[0] ?? "", /npm ci\b/);
    assert.match(stages[0] ?? "", /npm run build/);
  });

  it("installs production dependencies only in the runtime stage", () => {
    assert.match(runtime, /npm ci --omit=dev/);
    assert.match(runtime, /COPY --from=build \/app\/dist/);
    assert.doesNotMatch(runtime, /COPY (\.|src)\s/);
  });

  it("runs as a non-root user with the data dir as a volume and a health check", () => {
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /DATA_DIR=\/data/);
    assert.match(runtime, /^VOLUME \["\/data"\]$/m);
    assert.match(runtime, /NODE_ENV=production/);
    assert.match(runtime, /^HEALTHCHECK .*\n?.*scripts\/healthcheck\.mjs/m);
    assert.match(runtime, /CMD \["node", "dist\/main.js"\]/);
  });

  it("is mirrored by scripts/docker-mirror.sh", () => {
    assert.match(dockerfile, /CMD \["node", "scripts\/healthcheck\.mjs"\]/);
    assert.match(mirror, /node scripts\/healthcheck\.mjs/, "the mirror runs the same HEALTHCHECK command");
    assert.match(runtime, /COPY scripts\/orderbridge\.mjs scripts\/build-if-stale\.mjs scripts\/healthcheck\.mjs \.\/scripts\//);
    assert.match(mirror, /cp "\$root\/scripts\/orderbridge\.mjs" "\$root\/scripts\/build-if-stale\.mjs" "\$root\/scripts\/healthcheck\.mjs"/);
    assert.match(mirror, /node scripts\/orderbridge\.mjs migrate/, "the mirror runs the orderbridge command in the runtime image");
    assert.match(mirror, /npm ci --omit=dev/);
    assert.match(mirror, /NODE_ENV=production/);
    assert.match(mirror, /setpriv --reuid=65534/);
  });

  it("ships what the code reads from the package root at run time: in package.json files, the runtime image and the mirror", () => {
    // schemas/ (src/validation/schemas.ts), samples/ (src/cli/samples.ts, orderbridge send), openapi.yaml (src/http/openapi.ts).
    for (const dir of ["schemas", "samples"]) {
      assert.ok(pkg.files.includes(dir), `package.json files lists ${dir}`);
      assert.match(runtime, new RegExp(`^COPY ${dir} \\./${dir}$`, "m"), `the runtime stage copies ${dir}/`);
      assert.match(mirror, new RegExp(`cp -r "\\$root/${dir}" "\\$work/app/${dir}"`), `the mirror copies ${dir}/`);
    }
    assert.ok(pkg.files.includes("openapi.yaml"));
    assert.match(runtime, /^COPY openapi\.yaml \.\/$/m);
    assert.match(mirror, /node scripts\/orderbridge\.mjs send subscribe-pro minimal/, "the mirror sends a built-in sample from the runtime image");
  });
});
