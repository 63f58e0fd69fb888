import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ESLint } from "eslint";

// The layer boundaries of eslint.config.js (README "Layers"), checked on code that breaks them: a
// rule that stopped matching (a renamed directory, a pattern typo) would let the layers drift.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const eslint = new ESLint({ cwd: root });
const messages = async (file: string, code: string): Promise<string[]> => {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
};

describe("lint: the layer boundaries", () => {
  it("SQL only in src/store/: kysely and the schema are refused elsewhere in src/, allowed in src/store/", async () => {
    assert.match((await messages("src/http/new-module.ts", `import { sql } from "kysely";\nexport const q = sql;\n`)).join("\n"), /SQL belongs in src\/store\//);
    assert.match(
      (await messages("src/recharge/new-module.ts", `import type { JobsTable } from "../store/schema.js";\nexport type T = JobsTable;\n`)).join("\n"),
      /The schema is the store's own/,
    );
    assert.deepEqual(
      await messages(
        "src/store/new-module.ts",
        `import { sql } from "kysely";\nimport type { JobsTable } from "./schema.js";\nexport const q = sql;\nexport type T = JobsTable;\n`,
      ),
      [],
    );
  });

  it("one outbound HTTP client: axios only in src/outbound/", async () => {
    assert.match(
      (await messages("src/platforms/new-platform.ts", `import axios from "axios";\nexport const a = axios;\n`)).join("\n"),
      /Outbound HTTP goes through src\/outbound\//,
    );
    assert.deepEqual(await messages("src/outbound/new-module.ts", `import axios from "axios";\nexport const a = axios;\n`), []);
  });

  it("pure cores do no I/O and do not reach the store", async () => {
    assert.match((await messages("src/recharge/order.ts", `import fs from "node:fs";\nexport const f = fs;\n`)).join("\n"), /A pure core does no I\/O/);
    assert.match((await messages("src/security/new-check.ts", `import { enqueue } from "../store/jobs.js";\nexport const e = enqueue;\n`)).join("\n"), /A pure core does no I\/O/);
  });

  it("src/ never imports the tests, the bench or the stand-ins", async () => {
    assert.match(
      (await messages("src/cli/new-command.ts", `import { x } from "../../tools/stand-ins/recharge-api.js";\nexport const y = x;\n`)).join("\n"),
      /src\/ must not import from test\/, bench\/ or tools\//,
    );
  });

  it("the sources as they are keep every boundary", async () => {
    const results = await eslint.lintFiles(["src/**/*.ts"]);
    const broken = results.flatMap((r) => r.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => `${path.relative(root, r.filePath)}:${m.line} ${m.message}`));
    assert.deepEqual(broken, []);
  });
});
