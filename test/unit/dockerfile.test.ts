import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

// `docker build` cannot run here; these pin what the Dockerfile must keep, and that
// scripts/docker-mirror.sh (run by CI) repeats the same steps.
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");
const dockerfile = read("Dockerfile");
const mirror = read("scripts/docker-mirror.sh");
const pkg = JSON.parse(read("package.json")) as {
  name: string;
  version: string;
  license: string;
  repository: { url: string };
  engines: { node: string };
  files: string[];
};
const stages = dockerfile.split(/^FROM /m).slice(1);
const build = stages[0] ?? "";
const runtime = stages[stages.length - 1] ?? "";
const labels = Object.fromEntries([...runtime.matchAll(/(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));

/** The files scripts/docker-context.mjs puts in the build context of `root` (.dockerignore applied). */
function context(root?: string): string[] {
  const script = path.join(ROOT, "scripts/docker-context.mjs");
  const args = root === undefined ? [script, "--list"] : [script, "--list", "--root", root];
  return execFileSync(process.execPath, args, { encoding: "utf8" }).split("\n").filter(Boolean);
}

describe("Dockerfile", () => {
  it("builds the npm package with the lockfile and prunes to production dependencies", () => {
    assert.ok(stages.length >= 2, "at least a build and a runtime stage");
    assert.match(build, /npm ci\b/);
    assert.match(build, /^COPY \. \.$/m);
    assert.match(build, /npm pack\b/);
    assert.match(build, /npm prune --omit=dev/);
  });

  it("runs the package with the build's node_modules: no compiler, no install in the runtime stage", () => {
    assert.match(runtime, /^COPY --from=build \/pkg\/package \.\/$/m);
    assert.deepEqual(runtime.match(/^COPY .*/gm), ["COPY --from=build /pkg/package ./"], "everything in the image comes from the package");
    assert.doesNotMatch(runtime, /apt-get|python3|\bmake\b|g\+\+|npm (ci|install|rebuild)/);
    assert.match(build, /python3 make g\+\+/, "the toolchain is in the build stage only");
  });

  it("runs as a non-root user with the data dir as a volume and a health check on readiness", () => {
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /DATA_DIR=\/data/);
    assert.match(runtime, /^VOLUME \["\/data"\]$/m);
    assert.match(runtime, /NODE_ENV=production/);
    assert.match(runtime, /^HEALTHCHECK .*\n?.*CMD \["node", "scripts\/healthcheck\.mjs"\]/m);
    assert.match(read("scripts/healthcheck.mjs"), /\/readyz`/, "the health check asks /readyz");
    assert.match(runtime, /CMD \["node", "dist\/main.js"\]/);
  });

  it("is based on the newest LTS line of package.json engines, pinned to one release", () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)\.(\d+)\.(\d+)-([a-z]+)-slim$/m.exec(dockerfile);
    assert.ok(image, "ARG NODE_IMAGE=node:<major>.<minor>.<patch>-<debian>-slim");
    const majors = [...pkg.engines.node.matchAll(/(\d+)\.x/g)].map((m) => Number(m[1]));
    assert.equal(Number(image[1]), Math.max(...majors), `the newest line of engines (${pkg.engines.node})`);
    assert.equal(Number(image[1]) % 2, 0, "an even line: odd lines never become LTS");
    assert.match(build, /^\$\{NODE_IMAGE\} AS build$/m);
    assert.match(runtime, /^\$\{NODE_IMAGE\} AS runtime$/m, "build and runtime on the same image: better-sqlite3 is built for its ABI");
  });

  it("carries OCI labels that agree with package.json", () => {
    assert.equal(labels["org.opencontainers.image.title"], pkg.name);
    assert.equal(labels["org.opencontainers.image.version"], pkg.version);
    assert.equal(labels["org.opencontainers.image.licenses"], pkg.license);
    assert.equal(labels["org.opencontainers.image.source"], pkg.repository.url.replace(/^git\+/, "").replace(/\.git$/, ""));
    assert.equal(labels["org.opencontainers.image.revision"], "${REVISION}");
    assert.match(runtime, /^\s+BUILD_COMMIT="\$\{REVISION\}"$/m, "the revision is also orderbridge_build_info's commit label");
    assert.ok(runtime.indexOf("ARG REVISION") < runtime.indexOf("BUILD_COMMIT="), "the ARG is declared before the ENV that reads it");
    assert.equal(labels["org.opencontainers.image.base.name"], "docker.io/library/${NODE_IMAGE}");
    assert.ok(labels["org.opencontainers.image.description"]);
  });

  it("ships in the package, and so in the image, what runs and what the code reads from the package root", () => {
    const needed = new Set(["dist", "scripts/orderbridge.mjs", "scripts/build-if-stale.mjs", "scripts/healthcheck.mjs"]);
    // schemas/ (src/validation/schemas.ts), samples/ (src/cli/samples.ts), openapi.yaml (src/http/openapi.ts), …
    const sources = fs.readdirSync(path.join(ROOT, "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    for (const f of sources) {
      for (const m of read(`src/${f}`).matchAll(/new URL\("((?:\.\.\/)+)([^"/]+)\/?[^"]*", import\.meta\.url\)/g)) {
        // Relative to the module in src/ (or dist/, at the same depth): ../ per directory, then the root.
        if ((m[1] as string).length / 3 === f.split("/").length) needed.add(m[2] as string);
      }
    }
    assert.ok(needed.has("schemas") && needed.has("openapi.yaml") && needed.has("samples"), [...needed].join(", "));
    // npm packs package.json whatever "files" says (src/version.ts reads it).
    needed.delete("package.json");
    for (const f of needed) assert.ok(pkg.files.includes(f), `package.json "files" has ${f}`);
  });
});

describe(".dockerignore", () => {
  it("keeps secrets, databases, tests, benchmarks and local builds out of the build context", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "docker-context-"));
    try {
      fs.copyFileSync(path.join(ROOT, ".dockerignore"), path.join(dir, ".dockerignore"));
      const files = [
        ".env",
        ".env.production",
        "src/.env.local",
        "data/orderbridge.sqlite",
        "orderbridge.sqlite",
        "src/x.sqlite-wal",
        "x.db",
        "test/unit/a.test.ts",
        "bench/run.ts",
        "node_modules/a/index.js",
        "dist/main.js",
        ".git/HEAD",
        "npm-debug.log",
        "orderbridge-0.1.0.tgz",
        "package.json",
        "package-lock.json",
        "README.md",
        "LICENSE",
        "src/main.ts",
        "src/data/x.ts",
        "schemas/a.json",
        "scripts/orderbridge.mjs",
      ];
      for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), "");
      }
      assert.deepEqual(context(dir), [
        ".dockerignore",
        "LICENSE",
        "README.md",
        "package-lock.json",
        "package.json",
        "schemas/a.json",
        "scripts/orderbridge.mjs",
        "src/data/x.ts",
        "src/main.ts",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps in the context everything npm pack needs", () => {
    const files = context();
    const has = (p: string): boolean => files.some((f) => f === p || f.startsWith(`${p}/`));
    for (const p of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src", "README.md", "LICENSE", ...pkg.files.filter((f) => f !== "dist")]) {
      assert.ok(has(p), `${p} is in the build context`);
    }
  });
});

describe("scripts/docker-mirror.sh", () => {
  it("repeats the Dockerfile's steps", () => {
    assert.match(mirror, /node "\$root\/scripts\/docker-context\.mjs" "\$work\/build"/, "the build context with .dockerignore applied");
    assert.match(mirror, /npm ci --no-audit/);
    assert.match(mirror, /npm pack --pack-destination/);
    assert.match(mirror, /npm prune --omit=dev/);
    assert.match(mirror, /cp -a "\$work\/pkg\/package" "\$work\/app"/, "the runtime stage is the package");
    assert.match(mirror, /node scripts\/healthcheck\.mjs/, "the same HEALTHCHECK command");
    assert.match(mirror, /node scripts\/orderbridge\.mjs migrate/, "the orderbridge command in the runtime image");
    assert.match(mirror, /node scripts\/orderbridge\.mjs send subscribe-pro minimal/, "a built-in sample sent from the runtime image");
    assert.match(mirror, /NODE_ENV=production/);
    assert.match(mirror, /setpriv --reuid=65534/);
  });
});
