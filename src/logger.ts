import winston from "winston";

export type Logger = winston.Logger;

/** Keys whose values never reach a log line, at any depth. */
const SENSITIVE_KEY = /token|secret|signature|hmac|password|passwd|authorization|cookie|card|cvv|payment|api[-_]?key/i;
const REDACTED = "[redacted]";
/** Identifiers that look sensitive by name but are not secrets (and are needed to trace an order). */
const NOT_SENSITIVE = new Set(["salesOrderToken", "idempotencyKey"]);
const isSensitive = (key: string): boolean => !NOT_SENSITIVE.has(key) && SENSITIVE_KEY.test(key);

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
}): Logger {
  const format =
    opts.format === "json"
      ? winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json())
      : winston.format.combine(
          redactFormat(),
          winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
          winston.format.errors({ stack: true }),
          winston.format.colorize(),
          winston.format.printf(({ level, message, timestamp, stack, ...rest }) => {
            const fields = Object.entries(rest)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
              .join(" ");
            const stackText = typeof stack === "string" ? `\n${stack}` : "";
            return `${String(timestamp)} ${level} ${String(message)}${fields ? " " + fields : ""}${stackText}`;
          }),
        );
  const transport =
    opts.stream === undefined
      ? new winston.transports.Console({ stderrLevels: [] })
      : new winston.transports.Stream({ stream: opts.stream });
  return winston.createLogger({ level: opts.level, format, transports: [transport], silent: opts.silent ?? false });
}
