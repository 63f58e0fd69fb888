import path from "node:path";

/**
 * The kinds of setting orderbridge reads from its environment. Each setting is declared once
 * (src/config/spec.ts) with its variable, default, accepted values, secret flag and help; from that
 * one declaration come its parsing and problem message, how `config check` and the start-up log show
 * it (describe), and its row in the README's configuration table (src/config/readme.ts).
 */

export type Env = Record<string, string | undefined>;

/** What a default may depend on: how the process runs, and other settings. */
export interface ReadContext {
  readonly env: Env;
  readonly isTty: boolean;
  /** Another setting's value, read again without reporting its problems (they are reported where it is read). */
  valueOf<T>(setting: Setting<T>): T;
}

export interface Setting<T> {
  /** The environment variable. */
  readonly name: string;
  readonly help: string;
  /** README: the values it takes. */
  readonly values: string;
  /** README: the default, as Markdown ("–" when there is none). */
  readonly defaultText: string;
  /** Never shown: the description shows `****` or a count in its place. */
  readonly secret: boolean;
  /** The key the description shows it under; undefined: its key in the spec. */
  readonly describeAs: string | undefined;
  /** False when it only shapes another setting's value (RECHARGE_WRITEBACK) and is not kept itself. */
  readonly described: boolean;
  /** Its value; an invalid one is reported through `problem` (and a fallback returned). */
  read(ctx: ReadContext, problem: (message: string) => void): T;
  /** How `config check` and the start-up log show the value (secrets masked). */
  describe(value: T): unknown;
}

/** A section's settings by the key their value has in Config; a nested record is a nested object. */
export interface Spec {
  readonly [key: string]: Setting<unknown> | Spec;
}

/** The values a spec reads: the Config object it describes. */
export type Values<S> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : Values<S[K]> };

function isSetting(x: Setting<unknown> | Spec): x is Setting<unknown> {
  return typeof x.read === "function";
}

export function readSpec<S extends Spec>(spec: S, ctx: ReadContext, problem: (message: string) => void): Values<S> {
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(spec)) out[key] = isSetting(entry) ? entry.read(ctx, problem) : readSpec(entry, ctx, problem);
  return out as Values<S>;
}

/** The description of values read by `spec`: each setting as its `describe` shows it. */
export function describeSpec(spec: Spec, values: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const v = values as Record<string, unknown>;
  for (const [key, entry] of Object.entries(spec)) {
    if (!isSetting(entry)) out[key] = describeSpec(entry, v[key] as object);
    else if (entry.described) out[entry.describeAs ?? key] = entry.describe(v[key]);
  }
  return out;
}

/** Every setting of a spec, in order. */
export function settingsOf(spec: Spec): Setting<unknown>[] {
  return Object.values(spec).flatMap((e) => (isSetting(e) ? [e] : settingsOf(e)));
}

/** The variable's text: trimmed, undefined when unset or blank. */
export function rawValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

// ---- building settings -----------------------------------------------------------------------

interface Common<T> {
  readonly help: string;
  readonly secret?: boolean;
  /** README default column, when the default is not a plain value (or there is none). */
  readonly defaultText?: string;
  describe?(value: T): unknown;
  readonly describeAs?: string;
  readonly described?: boolean;
  /** A further rule on a valid value: the problem, or undefined. */
  check?(value: T): string | undefined;
}

type Default<T> = T | ((ctx: ReadContext) => T);

interface Definition<T> extends Common<T> {
  readonly values: string;
  /** Of a set value (trimmed, not blank); calls `problem` for an invalid one and returns a fallback (often the default). */
  readonly parse: (raw: string, problem: (message: string) => void, fallback: () => T) => T;
  readonly default: Default<T>;
  /** README default column when `defaultText` is not given. */
  readonly shownDefault: string;
  /** Take the variable as it is, untrimmed, and "" as a value (ORDER_NUMBER_PREFIX). */
  readonly untrimmed?: boolean;
}

const code = (v: string | number | boolean): string => `\`${String(v)}\``;
const maskSecret = (v: unknown): unknown => (v === undefined ? undefined : "****");

function define<T>(name: string, d: Definition<T>): Setting<T> {
  const secret = d.secret === true;
  return {
    name,
    help: d.help,
    values: secret ? `${d.values}; secret` : d.values,
    defaultText: d.defaultText ?? d.shownDefault,
    secret,
    describeAs: d.describeAs,
    described: d.described !== false,
    read(ctx, problem) {
      const fallback = (): T => (typeof d.default === "function" ? (d.default as (c: ReadContext) => T)(ctx) : d.default);
      const raw = d.untrimmed === true ? ctx.env[name] : rawValue(ctx.env, name);
      if (raw === undefined) return fallback();
      let valid = true;
      const report = (m: string): void => {
        valid = false;
        problem(m);
      };
      const value = d.parse(raw, report, fallback);
      const extra = valid ? d.check?.(value) : undefined;
      if (extra !== undefined) problem(extra);
      return value;
    },
    describe: (v: T) => (d.describe !== undefined ? d.describe(v) : secret ? maskSecret(v) : v),
  };
}

/** A whole number in a range. */
export function int(name: string, o: Common<number> & { default: Default<number>; min: number; max: number }): Setting<number> {
  return define(name, {
    ...o,
    values: `whole number, ${o.min}–${o.max}`,
    shownDefault: typeof o.default === "number" ? code(o.default) : "–",
    parse: (raw, problem, fallback) => {
      if (!/^\d+$/.test(raw) || Number(raw) < o.min || Number(raw) > o.max) {
        problem(`${name} must be a whole number from ${o.min} to ${o.max} (got "${raw}")`);
        return fallback();
      }
      return Number(raw);
    },
  });
}

/** A number (decimals allowed) above `above` and at most `max`. */
export function decimal(name: string, o: Common<number> & { default: number; above: number; max: number; unit: string }): Setting<number> {
  return define(name, {
    ...o,
    values: `number above ${o.above}, at most ${o.max}`,
    shownDefault: code(o.default),
    parse: (raw, problem) => {
      const n = Number(raw);
      if (!/^\d+(\.\d+)?$/.test(raw) || n <= o.above || n > o.max) {
        problem(`${name} must be a number above ${o.above} and at most ${o.max} (${o.unit})`);
        return o.default;
      }
      return n;
    },
  });
}

const TRUE = ["true", "1", "on", "yes"];
const FALSE = ["false", "0", "off", "no"];

/** true/1/on/yes or false/0/off/no, in any case. */
export function bool(name: string, o: Common<boolean> & { default: boolean }): Setting<boolean> {
  return define(name, {
    ...o,
    values: "boolean",
    shownDefault: code(o.default),
    parse: (raw, problem) => {
      const v = raw.toLowerCase();
      if (TRUE.includes(v)) return true;
      if (FALSE.includes(v)) return false;
      problem(`${name} must be true or false`);
      return o.default;
    },
  });
}

/**
 * One of a few words. `fold` is how the value is compared (lower or upper case, or exactly);
 * `got` whether the problem quotes the value as set (`raw`), as folded, or not at all.
 */
export function oneOf<const V extends string>(
  name: string,
  choices: readonly V[],
  o: Common<V> & { default: Default<V>; fold: "lower" | "upper" | "exact"; got: "raw" | "folded" | "none" },
): Setting<V> {
  return define(name, {
    ...o,
    values: choices.map(code).join(", "),
    shownDefault: typeof o.default === "string" ? code(o.default) : "–",
    parse: (raw, problem) => {
      const v = o.fold === "lower" ? raw.toLowerCase() : o.fold === "upper" ? raw.toUpperCase() : raw;
      if ((choices as readonly string[]).includes(v)) return v as V;
      const expected = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(", ")}`;
      const got = o.got === "raw" ? ` (got "${raw}")` : o.got === "folded" ? ` (got "${v}")` : "";
      problem(`${name} must be ${expected}${got}`);
      return v as V;
    },
  });
}

interface TextOptions<T> extends Common<T> {
  readonly values: string;
  /** A value that does not match is refused with `message`. */
  readonly pattern?: { readonly re: RegExp; readonly message: string };
  readonly untrimmed?: boolean;
}

/** Text, optionally matching a pattern. */
export function text(name: string, o: TextOptions<string> & { default: string }): Setting<string>;
export function text(name: string, o: TextOptions<string | undefined>): Setting<string | undefined>;
export function text(name: string, o: TextOptions<string | undefined> & { default?: string }): Setting<string | undefined> {
  return define<string | undefined>(name, {
    ...o,
    default: o.default,
    shownDefault: o.default === undefined ? "–" : code(o.default),
    parse: (raw, problem) => {
      if (o.pattern !== undefined && !o.pattern.re.test(raw)) problem(o.pattern.message);
      return raw;
    },
  });
}

/** A secret token of at least `minLength` characters. */
export function token(name: string, o: Common<string | undefined> & { minLength: number; hint?: string }): Setting<string | undefined> {
  return text(name, {
    ...o,
    secret: true,
    values: `text, ${o.minLength}+ characters`,
    pattern: { re: new RegExp(`^[^]{${o.minLength},}$`), message: `${name} must be at least ${o.minLength} characters long${o.hint === undefined ? "" : ` (${o.hint})`}` },
  });
}

const HTTP_URL = /^https?:\/\/[^\s]+$/;

/** An http(s) URL; described with its credentials and secret-looking query parameters masked. */
export function url(name: string, o: Common<string> & { default: string }): Setting<string>;
export function url(name: string, o: Common<string | undefined>): Setting<string | undefined>;
export function url(name: string, o: Common<string | undefined> & { default?: string }): Setting<string | undefined> {
  return text(name, {
    describe: (v) => (v === undefined ? undefined : maskUrl(v)),
    ...o,
    values: "http(s) URL",
    pattern: { re: HTTP_URL, message: `${name} must be an http(s) URL` },
  });
}

/** Comma-separated entries, blanks dropped. */
export function list(name: string, o: Common<readonly string[]> & { values?: string }): Setting<readonly string[]> {
  return define(name, {
    ...o,
    values: o.values ?? "comma-separated",
    default: () => [],
    shownDefault: "–",
    parse: (raw) => splitList(raw),
  });
}

export function splitList(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** A file or directory, resolved against the working directory. */
export function filePath(name: string, o: Common<string> & { default: string }): Setting<string>;
export function filePath(name: string, o: Common<string | undefined>): Setting<string | undefined>;
export function filePath(name: string, o: Common<string | undefined> & { default?: string }): Setting<string | undefined> {
  const fallback = o.default;
  return define<string | undefined>(name, {
    ...o,
    values: "a path",
    default: fallback === undefined ? undefined : path.resolve(fallback),
    shownDefault: fallback === undefined ? "–" : code(fallback),
    parse: (raw) => path.resolve(raw),
  });
}

/** A size such as `512kb` or `2mb`, in bytes. */
export function bytes(name: string, o: Common<number> & { default: string; min: string; max: string }): Setting<number> {
  const [def, min, max] = [o.default, o.min, o.max].map((s) => parseBytes(s) as number) as [number, number, number];
  return define(name, {
    ...o,
    values: `size, ${code(o.min)}–${code(o.max)}`,
    default: def,
    shownDefault: code(o.default),
    parse: (raw, problem) => {
      const n = parseBytes(raw);
      if (n === undefined || n < min || n > max) {
        problem(`${name} must be a size from ${o.min} to ${o.max}, such as "1mb" or "512kb"`);
        return def;
      }
      return n;
    },
  });
}

/** A setting with a parser of its own. */
export function custom<T>(
  name: string,
  o: Common<T> & { values: string; default: Default<T>; parse: (raw: string, problem: (message: string) => void, fallback: () => T) => T },
): Setting<T> {
  return define(name, { ...o, shownDefault: "–" });
}

// ---- values ------------------------------------------------------------------------------------

/** "1mb" → 1048576. Returns undefined when the text is not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = (m[2] ?? "b").toLowerCase();
  const mult = unit === "gb" ? 1024 ** 3 : unit === "mb" ? 1024 ** 2 : unit === "kb" ? 1024 : 1;
  return Math.floor(Number(m[1]) * mult);
}

/** A URL for logs: its user name and password, and any query parameter that may hold a secret, masked. */
export function maskUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return "(not a URL)";
  }
  if (u.username !== "") u.username = "****";
  if (u.password !== "") u.password = "****";
  for (const key of [...u.searchParams.keys()]) {
    if (/pass|secret|token|key|auth|cred/i.test(key)) u.searchParams.set(key, "****");
  }
  return u.toString().replace(/%2A%2A%2A%2A/g, "****");
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "15m" → 900000, "72h", "90s", "500ms", "1.5h"; a bare "0" is 0. Undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === "0") return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i.exec(t);
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * (DURATION_UNITS[(m[2] as string).toLowerCase()] as number));
}

/** "15m" → "15m": a duration as Markdown for the README (from milliseconds). */
function showDuration(ms: number): string {
  if (ms === 0) return "0";
  // Days from a week up: 72 hours reads as 72h.
  if (ms >= 7 * 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** A span of time with its unit (`500ms`, `90s`, `15m`, `72h`, `3d`), kept in milliseconds; `0` where `zero` says what it means. */
export function duration(name: string, o: Common<number> & { default: number; min: number; max: number; zero?: string }): Setting<number> {
  const range = `${o.zero !== undefined ? "`0` or " : ""}${showDuration(Math.max(o.min, 1))}–${showDuration(o.max)}`;
  return define(name, {
    describe: (v: number) => (v === 0 && o.zero !== undefined ? `0 (${o.zero})` : showDuration(v)),
    ...o,
    values: `duration with a unit (\`ms\`, \`s\`, \`m\`, \`h\`, \`d\`), ${range}`,
    shownDefault: code(showDuration(o.default)),
    parse: (raw, problem) => {
      const ms = parseDuration(raw);
      const ok = ms !== undefined && ((ms === 0 && o.zero !== undefined) || (ms >= o.min && ms <= o.max));
      if (!ok) {
        problem(`${name} must be a duration with its unit such as 90s, 15m or 72h, ${range.replace(/`/g, "")} (got "${raw}")`);
        return o.default;
      }
      return ms;
    },
  });
}
