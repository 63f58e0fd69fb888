import { settingsOf } from "./settings.js";
import { SECTIONS } from "./spec.js";

/**
 * The README's configuration table, made from the spec (src/config/spec.ts): `npm run docs:config`
 * writes it between the markers, and test/unit/readme.test.ts fails when the one in docs/configuration.md differs.
 */

export const TABLE_START = "<!-- config-table: made from src/config/spec.ts by `npm run docs:config`; edit the spec, not the table -->";
export const TABLE_END = "<!-- config-table end -->";

const cell = (s: string): string => s.replace(/\|/g, "\\|");

export function configTable(): string {
  const rows = ["| Variable | Default | Values | Meaning |", "|---|---|---|---|"];
  for (const section of SECTIONS) {
    rows.push(`| **${cell(section.title)}** | | | |`);
    for (const s of settingsOf(section.spec)) rows.push(`| \`${s.name}\` | ${cell(s.defaultText)} | ${cell(s.values)} | ${cell(s.help)} |`);
  }
  return `${rows.join("\n")}\n`;
}

/** The table as the README holds it now, between the markers; undefined without them. */
export function readmeConfigTable(readme: string): string | undefined {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + TABLE_START.length, end).replace(/^\n/, "");
}

/** The README with the table between the markers replaced by the one made from the spec. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md has no configuration table markers (${TABLE_START} … ${TABLE_END})`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${configTable()}${readme.slice(end)}`;
}
