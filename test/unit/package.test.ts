import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

// What `npm pack` / `npm publish` make of package.json. scripts/pack-smoke.sh (run by CI) installs
// the real tarball and runs it; these pin the fields it cannot see go wrong.
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  license: string;
  repository?: { type: string; url: string };
  engines: { node: string };
  bin: Record<string, string>;
  files: string[];
  main?: string;
  exports?: Record<string, string>;
  scripts: Record<string, string>;
};
const lines = (range: string): number[] => [...range.matchAll(/(\d+)\.x/g)].map((m) => Number(m[1]));

describe("package.json", () => {
  it("is the orderbridge command, named as it is run", () => {
    // npx orderbridge fetches the package named orderbridge: the name and the bin are one.
    assert.equal(pkg.name, "orderbridge");
    assert.deepEqual(pkg.bin, { orderbridge: "scripts/orderbridge.mjs" });
    assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  });

  it("builds dist/ afresh when packed", () => {
    // A dist/ left from removed sources would ship their stale modules.
    assert.match(pkg.scripts["prepack"] ?? "", /rmSync\('dist'.*&& npm run build$/);
  });

  it("ships what runs, and nothing only development needs", () => {
    const needed = ["dist", "schemas", "openapi.yaml", pkg.bin["orderbridge"] as string];
    // The bin's own imports (./x.mjs) ship with it.
    const binSource = fs.readFileSync(path.join(ROOT, pkg.bin["orderbridge"] as string), "utf8");
    for (const m of binSource.matchAll(/from "\.\/([\w.-]+\.mjs)"/g)) needed.push(`scripts/${m[1]}`);
    for (const f of needed) assert.ok(pkg.files.includes(f), `"files" has ${f}`);
    for (const f of pkg.files) {
      assert.doesNotMatch(f, /^(src|test|bench|\.ci|data)\b|^scripts\/?$|scripts\/(test|start|docker-|pack-smoke)/, `"files" has ${f}, which only development needs`);
      assert.ok(fs.existsSync(path.join(ROOT, f)) || f === "dist", `${f} exists`);
    }
  });

  it("offers no module to import: importing it would start the service", () => {
    assert.equal(pkg.main, undefined);
    assert.deepEqual(pkg.exports, { "./package.json": "./package.json" });
  });

  it("runs on the LTS lines its native dependency supports, Node 20 still among them", () => {
    const ours = lines(pkg.engines.node);
    assert.deepEqual(ours, [20, 22, 24, 26], pkg.engines.node);
    const sqlite = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/better-sqlite3/package.json"), "utf8")) as { engines: { node: string } };
    for (const line of ours) assert.ok(lines(sqlite.engines.node).includes(line), `better-sqlite3 ${sqlite.engines.node} supports Node ${line}`);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { engines?: { node: string } }> };
    assert.equal(lock.packages[""]?.engines?.node, pkg.engines.node, "package-lock.json records the same engines");
  });

  it("says where it comes from and under which licence, with the licence text", () => {
    assert.equal(pkg.license, "MIT");
    assert.match(pkg.repository?.url ?? "", /^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
    assert.match(fs.readFileSync(path.join(ROOT, "LICENSE"), "utf8"), /^MIT License\n/);
  });
});
