#!/usr/bin/env node
// The Docker build context without Docker: the repository's files less what .dockerignore excludes,
// matched as Docker matches them (patterns relative to the root, `*` and `?` within one path
// segment, `**` across any number of them, a match on a directory excluding everything under it,
// `!` re-including, the last matching line deciding). scripts/docker-mirror.sh builds from it.
//   node scripts/docker-context.mjs --list     the context's files, one per line
//   node scripts/docker-context.mjs DEST       copy them to DEST
// --root DIR after either: the context of DIR instead of this repository (the tests use it).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [arg, rootFlag, rootArg] = process.argv.slice(2);
const root = rootFlag === "--root" && rootArg !== undefined ? path.resolve(rootArg) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function toRegExp(pattern) {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      // `**/` is zero or more directories; a trailing `**` is anything below.
      if (pattern[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end === -1) re += "\\[";
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, "^")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

const rules = fs
  .readFileSync(path.join(root, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"))
  .map((l) => {
    const negate = l.startsWith("!");
    const p = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, "");
    return { negate, re: toRegExp(p) };
  });

/** Whether Docker leaves `rel` (a path relative to the root, with /) out of the context. */
function excluded(rel) {
  const parts = rel.split("/");
  let out = false;
  for (const { negate, re } of rules) {
    // A pattern matches the path itself or any directory above it.
    for (let n = parts.length; n >= 1; n--) {
      if (re.test(parts.slice(0, n).join("/"))) {
        out = !negate;
        break;
      }
    }
  }
  return out;
}
const hasExceptions = rules.some((r) => r.negate);

function walk(dir, rel, found) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    // node_modules is a symlink in a worktree: a directory to Docker all the same.
    const isDir = e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory() === true);
    if (isDir) {
      if (excluded(r) && !hasExceptions) continue;
      walk(path.join(dir, e.name), r, found);
    } else if (!excluded(r)) found.push(r);
  }
  return found;
}

const files = walk(root, "", []).sort();
if (arg === "--list") {
  process.stdout.write(files.map((f) => `${f}\n`).join(""));
} else if (arg !== undefined) {
  for (const f of files) {
    const to = path.join(arg, f);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(root, f), to);
    fs.chmodSync(to, fs.statSync(path.join(root, f)).mode & 0o777);
  }
} else {
  process.stderr.write("usage: node scripts/docker-context.mjs --list | DEST [--root DIR]\n");
  process.exit(2);
}
