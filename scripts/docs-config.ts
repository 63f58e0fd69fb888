// npm run docs:config: writes the configuration table of docs/configuration.md from the settings' spec (src/config/spec.ts).
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { withConfigTable } from "../src/config/readme.js";

const file = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
const before = fs.readFileSync(file, "utf8");
const after = withConfigTable(before);
if (after !== before) fs.writeFileSync(file, after);
process.stdout.write(after === before ? "docs/configuration.md: configuration table up to date\n" : "docs/configuration.md: configuration table written\n");
