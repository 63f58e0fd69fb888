// npm run docs:config: writes the README's configuration table from the settings' spec (src/config/spec.ts).
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { withConfigTable } from "../src/config/readme.js";

const file = fileURLToPath(new URL("../README.md", import.meta.url));
const before = fs.readFileSync(file, "utf8");
const after = withConfigTable(before);
if (after !== before) fs.writeFileSync(file, after);
process.stdout.write(after === before ? "README.md: configuration table up to date\n" : "README.md: configuration table written\n");
