import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import { configTable, readmeConfigTable, TABLE_START } from "../../src/config/readme.js";
import { settingsOf } from "../../src/config/settings.js";
import { SECTIONS } from "../../src/config/spec.js";

const readme = fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("holds the configuration table made from the settings' spec (after changing src/config/spec.ts, run npm run docs:config)", () => {
    const table = readmeConfigTable(readme);
    assert.ok(table !== undefined, "README.md has the configuration table's markers");
    assert.equal(table, configTable());
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## The `orderbridge` command"));
    assert.ok(section.includes(TABLE_START), "the table is in the Configuration section");
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
    assert.ok(readme.includes("```ts\n" + example + "```\n"), "README.md quotes the file as it is");
  });

  it("has the quick start and test command", () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /^npm test/m);
    assert.match(readme, /openssl dgst -sha256 -hmac/);
  });
});
