import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import { configTable, readmeConfigTable, TABLE_START } from "../../src/config/readme.js";
import { settingsOf } from "../../src/config/settings.js";
import { SECTIONS } from "../../src/config/spec.js";

const read = (f: string): string => fs.readFileSync(new URL(`../../${f}`, import.meta.url), "utf8");
const readme = read("README.md");
// The reference moved to docs/: the configuration table and the platform pages are there.
const configuration = read("docs/configuration.md");
const platforms = read("docs/platforms.md");

describe("README", () => {
  it("docs/configuration.md holds the configuration table made from the settings' spec (after changing src/config/spec.ts, run npm run docs:config)", () => {
    const table = readmeConfigTable(configuration);
    assert.ok(table !== undefined, "docs/configuration.md has the configuration table's markers");
    assert.equal(table, configTable());
    assert.ok(configuration.slice(configuration.indexOf("## Configuration")).includes(TABLE_START), "the table is in the Configuration section");
  });

  it("the table has one row per setting, each with its values and help", () => {
    const settings = SECTIONS.flatMap((s) => settingsOf(s.spec));
    const names = settings.map((s) => s.name);
    assert.equal(new Set(names).size, names.length, "no variable is declared twice");
    assert.deepEqual(
      [...configTable().matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]),
      names,
    );
    for (const s of settings) assert.ok(s.help !== "" && s.values !== "" && s.defaultText !== "", s.name);
  });

  it("quotes the receiving example for PLATFORM=http exactly as the tests run it (test/fixtures/platform-http/receiver.ts)", () => {
    const example = fs.readFileSync(new URL("../fixtures/platform-http/receiver.ts", import.meta.url), "utf8");
    assert.ok(platforms.includes("```ts\n" + example + "```\n"), "docs/platforms.md quotes the file as it is");
  });

  it("stays a README a newcomer reads: under 25 KB, every link to a file of the repository resolves, no internal issue numbers", () => {
    assert.ok(Buffer.byteLength(readme) < 25_000, `README.md is ${Buffer.byteLength(readme)} bytes`);
    for (const [file, text] of [
      ["README.md", readme],
      ...fs
        .readdirSync(new URL("../../docs/", import.meta.url))
        .filter((f) => f.endsWith(".md"))
        .map((f) => [`docs/${f}`, read(`docs/${f}`)]),
    ] as [string, string][]) {
      assert.doesNotMatch(text, /\bissue #\d+/i, `${file} cites an internal issue number`);
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        const resolved = new URL(target, new URL(`../../${file}`, import.meta.url));
        assert.ok(fs.existsSync(resolved), `${file} links to ${target}, which is not in the repository`);
      }
    }
  });

  it("the published schemas cite no file outside the repository and no internal issue number", () => {
    const walk = (dir: URL): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? walk(new URL(`${e.name}/`, dir)) : e.name.endsWith(".json") ? [new URL(e.name, dir).pathname] : []));
    for (const f of walk(new URL("../../schemas/", import.meta.url))) {
      const text = fs.readFileSync(f, "utf8");
      assert.doesNotMatch(text, /shared\/spec|seeds\/|\bissue #\d+/i, f);
    }
  });

  it("has the quick start and test command", () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /^npm test/m);
    assert.match(readme, /openssl dgst -sha256 -hmac/);
  });
});
