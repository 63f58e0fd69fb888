#!/usr/bin/env node
// `npm start`: compile src/ to dist/ when dist/ is missing or older than any source, then run it.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { buildIfStale, root } from "./build-if-stale.mjs";

const entry = path.join(root, "dist", "main.js");
buildIfStale(entry);
await import(pathToFileURL(entry).href);
