import winston from "winston";
import TransportStream from "winston-transport";

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

/**
 * The answers for the keys seen so far: the same few dozen keys come in every log line and every
 * callback body, and splitting a key into its words cost a few percent of a request's CPU. Bounded:
 * a hostile body brings any number of keys, and long ones are not kept.
 */
const sensitiveKeys = new Map<string, boolean>();
const SENSITIVE_CACHE_MAX = 4096;
const SENSITIVE_CACHE_KEY_MAX = 64;

/** Whether a key's value is redacted: one of its words is sensitive (or two make "api key"). */
export function isSensitiveKey(key: string): boolean {
  const known = sensitiveKeys.get(key);
  if (known !== undefined) return known;
  const words = keyWords(key);
  const sensitive = !NOT_SENSITIVE.has(key) && words.some((w, i) => SENSITIVE_WORDS.has(w) || (w === "api" && words[i + 1] === "key"));
  if (key.length <= SENSITIVE_CACHE_KEY_MAX && sensitiveKeys.size < SENSITIVE_CACHE_MAX) sensitiveKeys.set(key, sensitive);
  return sensitive;
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

/** How maskSensitive masks: with what, how deep it looks, and whether emails go too. */
export interface MaskOptions {
  replacement: string;
  /** Objects and arrays at this depth are replaced by "[nested too deep]" (nothing below is looked at). */
  maxDepth: number;
  /** Mask the values of keys that name an email too. */
  email?: boolean;
}

/**
 * The value with every sensitive key's value replaced (payment data, tokens, card numbers,
 * signatures), at any depth up to `maxDepth`; what is nested deeper is not shown at all, so no
 * secret passes below the depth looked at. A null or absent value stays as it is (it holds no
 * secret). One walker for the logs (below) and the callback log's bodies.
 */
export function maskSensitive(value: unknown, o: MaskOptions, depth = 0): unknown {
  if (value === null || typeof value !== "object" || value instanceof AlreadyMasked) return value;
  if (depth >= o.maxDepth) return "[nested too deep]";
  if (Array.isArray(value)) return value.map((v) => maskSensitive(v, o, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSensitive(k) || (o.email === true && /email/i.test(k)) ? (v === null || v === undefined ? v : o.replacement) : maskSensitive(v, o, depth + 1);
  }
  return out;
}

/** In a log line: "[redacted]", and nothing nested deeper than a log line's fields have reason to be. */
const LOG_MASK: MaskOptions = { replacement: REDACTED, maxDepth: 8 };

/** A winston format that masks sensitive fields anywhere in the log entry. */
const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === "level" || key === "message") continue;
    info[key] = isSensitive(key) ? REDACTED : maskSensitive(info[key], LOG_MASK);
  }
  return info;
});

/** Where winston's formats leave the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for("message");

/**
 * The JSON line: JSON.stringify of the entry, fields in the order they were given (level and
 * message first). logform's json format built a new safe-stable-stringify per line and sorted the
 * keys; this costs a fraction. A value JSON cannot write (a bigint, a cycle) is written as text.
 */
export function jsonLine(info: object): string {
  try {
    return JSON.stringify(info);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(info, (_k, v: unknown) => {
      if (typeof v === "bigint") return v.toString();
      if (typeof v === "object" && v !== null) {
        if (seen.has(v)) return "[Circular]";
        seen.add(v);
      }
      return v;
    });
  }
}
const jsonFormat = winston.format((info) => {
  (info as unknown as Record<symbol, unknown>)[MESSAGE] = jsonLine(info);
  return info;
});

/**
 * Standard output, written once per turn of the event loop: the lines of that turn (a busy server
 * finishes many requests in one) go out in one write instead of one each. What is pending when the
 * process exits is written then (process.stdout is synchronous for files and pipes); a SIGKILL can
 * lose the last turn's lines.
 */
export class BatchedLines extends TransportStream {
  #lines: string[] = [];
  #scheduled = false;
  readonly #out: NodeJS.WritableStream;
  readonly #flush = (): void => this.flush();

  constructor(out: NodeJS.WritableStream) {
    super();
    this.#out = out;
    process.on("exit", this.#flush);
  }

  override log(info: unknown, next: () => void): void {
    this.#lines.push(`${String((info as Record<symbol, unknown>)[MESSAGE])}\n`);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    next();
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("");
    this.#lines = [];
    this.#out.write(text);
  }

  override close(): void {
    this.flush();
    process.off("exit", this.#flush);
  }
}

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
      ? winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.errors({ stack: true }), jsonFormat())
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
  const transport: TransportStream = opts.stream === undefined ? new BatchedLines(process.stdout) : new winston.transports.Stream({ stream: opts.stream });
  return winston.createLogger({ level: opts.level, format, transports: [transport], silent: opts.silent ?? false });
}
