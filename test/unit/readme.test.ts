import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

const readme = fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const configSource = fs.readFileSync(new URL("../../src/config.ts", import.meta.url), "utf8");

describe("README", () => {
  it("documents every environment variable the service reads, and no other", () => {
    const read = new Set([...configSource.matchAll(/(?:get|int|list|bool)\("([A-Z_]+)"|env\["([A-Z_]+)"\]/g)].map((m) => m[1] ?? m[2]));
    const configSection = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Endpoints"));
    const documented = new Set([...configSection.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    assert.deepEqual([...read].filter((v) => !documented.has(v)), [], "read but not documented");
    assert.deepEqual([...documented].filter((v) => !read.has(v)), [], "documented but not read");
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
