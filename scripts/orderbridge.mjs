#!/usr/bin/env node
// The `orderbridge` command (package bin): builds dist/ when needed, then runs the CLI.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { buildIfStale, root } from "./build-if-stale.mjs";

const entry = path.join(root, "dist", "cli", "main.js");
buildIfStale(entry);
await import(pathToFileURL(entry).href);
