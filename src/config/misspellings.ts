import { settingsOf, type Env } from "./settings.js";
import { SECTIONS } from "./spec.js";

/**
 * Variables that look meant for orderbridge but are not one of its settings, such as
 * RECHARGE_CLIENT_SECRET for RECHARGE_CLIENT_SECRETS: an ignored variable otherwise leaves a
 * feature silently off. Named at start and by `config check`, with the setting they are closest to;
 * their values are never read.
 */

const KNOWN: readonly string[] = SECTIONS.flatMap((s) => settingsOf(s.spec).map((x) => x.name));
const KNOWN_SET = new Set(KNOWN);

/** A variable looks like orderbridge's when it starts with a setting's first word (SP_, RECHARGE_, PLATFORM_, …). */
const firstWord = (name: string): string => name.split("_", 1)[0] ?? name;
// NODE_ belongs to Node (NODE_OPTIONS, NODE_EXTRA_CA_CERTS, …): only NODE_ENV of it is ours.
const PREFIXES = new Set(KNOWN.map(firstWord).filter((w) => w !== "NODE"));

/** The most edits (insertions, deletions, substitutions) between a variable and the setting it is taken for. */
const MAX_DISTANCE = 2;

export interface MisspeltSetting {
  /** The variable as set. */
  readonly name: string;
  /** The setting it is closest to. */
  readonly suggestion: string;
}

/**
 * The variables of `env` that are not settings but are close to one: same first word, and at most
 * two edits away (which covers a missing or extra trailing S) or differing only in case.
 */
export function misspeltSettings(env: Env): MisspeltSetting[] {
  const found: MisspeltSetting[] = [];
  for (const name of Object.keys(env).sort()) {
    if (KNOWN_SET.has(name)) continue;
    const upper = name.toUpperCase();
    if (!PREFIXES.has(firstWord(upper))) continue;
    let best: { name: string; distance: number } | undefined;
    for (const known of KNOWN) {
      const d = editDistance(upper, known, MAX_DISTANCE);
      if (d <= MAX_DISTANCE && (best === undefined || d < best.distance)) best = { name: known, distance: d };
    }
    if (best !== undefined) found.push({ name, suggestion: best.name });
  }
  return found;
}

/** The warning line for one: names only, never a value. */
export function misspeltSettingMessage(m: MisspeltSetting): string {
  return `${m.name} is not an orderbridge setting and is ignored: did you mean ${m.suggestion}?`;
}

/** Levenshtein distance, or more than `max` as soon as it cannot be `max` or less. */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      row.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > max) return max + 1;
    prev = row;
  }
  return prev[b.length] as number;
}
