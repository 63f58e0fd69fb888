import fs from "node:fs";

/** package.json at the package root (the same relative place from src/ and dist/). */
const PACKAGE_JSON = new URL("../package.json", import.meta.url);

/** orderbridge's version, as package.json gives it. */
export const VERSION: string = (JSON.parse(fs.readFileSync(PACKAGE_JSON, "utf8")) as { version: string }).version;
