import winston from "winston";

export type Logger = winston.Logger;

/**
 * Words that make a key's value never reach a log line, at any depth. They are matched against the
 * key's words (camelCase, snake_case, kebab-case, dotted), never inside a word: `cardNumber`,
 * `card_number` and `x-card` are redacted, `discard` and `cardinality` are not.
 */
const SENSITIVE_WORDS: ReadonlySet<string> = new Set(
  ["token", "secret", "signature", "hmac", "password", "authorization", "cookie", "card", "payment", "apikey"].flatMap((w) => [w, `${w}s`]).concat(["passwd", "cvv", "cvc"]),
);
const REDACTED = "[redacted]";
/** Identifiers that look sensitive by name but are not secrets (and are needed to trace an order). */
const NOT_SENSITIVE = new Set(["salesOrderToken", "idempotencyKey"]);

/** A key's words, lower-cased: "cardNumber" → card, number; "X-Api-Key" → x, api, key; "SP_HMAC" → sp, hmac. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== "");
}

/** Whether a key's value is redacted: one of its words is sensitive (or two make "api key"). */
export function isSensitiveKey(key: string): boolean {
  if (NOT_SENSITIVE.has(key)) return false;
  const words = keyWords(key);
  return words.some((w, i) => SENSITIVE_WORDS.has(w) || (w === "api" && words[i + 1] === "key"));
}
const isSensitive = isSensitiveKey;

/** Colour only on a terminal, and not when NO_COLOR is set to anything but "" (no-color.org). */
export function colourWanted(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && (env["NO_COLOR"] ?? "") === "";
}

/**
 * A value whose secrets were masked where it was made (describeConfig): logged as it is. Redacting
 * by key name would otherwise hide the descriptions themselves ("metricsToken": "(GET /metrics
 * open)" became "[redacted]", telling an operator the opposite of the truth).
 */
class AlreadyMasked {
  constructor(private readonly value: unknown) {}
  toJSON(): unknown {
    return this.value;
  }
}

/** Marks a value as masked already (its producer replaced every secret), so the logger keeps it. */
export function alreadyMasked(value: unknown): unknown {
  return new AlreadyMasked(value);
}

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object" || value instanceof AlreadyMasked) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSensitive(k) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

/** A winston format that masks sensitive fields anywhere in the log entry. */
const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === "level" || key === "message") continue;
    info[key] = isSensitive(key) ? REDACTED : redact(info[key]);
  }
  return info;
});

export function createLogger(opts: {
  level: string;
  format: "json" | "pretty";
  /** Where lines go; defaults to stdout. Tests pass a stream to read them back. */
  stream?: NodeJS.WritableStream;
  silent?: boolean;
  /**
   * ANSI colours in the pretty format; default: only when the lines go to a terminal. A file or a
   * pipe (LOG_FORMAT=pretty forced there) gets the same lines without escape codes.
   */
  colour?: boolean;
}): Logger {
  const out = opts.stream ?? process.stdout;
  const colour = opts.colour ?? (out as { isTTY?: boolean }).isTTY === true;
  const format =
    opts.format === "json"
      ? winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json())
      : winston.format.combine(
          redactFormat(),
          winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
          winston.format.errors({ stack: true }),
          ...(colour ? [winston.format.colorize()] : []),
          winston.format.printf(({ level, message, timestamp, stack, ...rest }) => {
            const fields = Object.entries(rest)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
              .join(" ");
            const stackText = typeof stack === "string" ? `\n${stack}` : "";
            return `${String(timestamp)} ${level} ${String(message)}${fields ? " " + fields : ""}${stackText}`;
          }),
        );
  const transport = opts.stream === undefined ? new winston.transports.Console({ stderrLevels: [] }) : new winston.transports.Stream({ stream: opts.stream });
  return winston.createLogger({ level: opts.level, format, transports: [transport], silent: opts.silent ?? false });
}
