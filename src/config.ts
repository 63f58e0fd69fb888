import path from "node:path";
import { ConfigError } from "./errors.js";
import { parseAllowlist, type Allowlist } from "./security/ip-allowlist.js";

export type SpAuthMode = "hmac" | "ip" | "both" | "either";
export type TrustProxy = boolean | number | string[];

/** Everything orderbridge reads from its environment, parsed and validated once at start-up. */
export interface Config {
  readonly env: "production" | "development" | "test";
  readonly port: number;
  readonly host: string | undefined;
  readonly dataDir: string;
  readonly database:
    | { readonly kind: "sqlite"; readonly file: string; readonly synchronous: "FULL" | "NORMAL" }
    | { readonly kind: "postgres"; readonly url: string; readonly schema: string | undefined; readonly poolSize: number };
  readonly subscribePro: {
    /** Empty when none was configured: main.ts then generates one (outside production). */
    readonly hmacSecrets: readonly string[];
    readonly allowlist: Allowlist;
    readonly auth: SpAuthMode;
  };
  readonly trustProxy: TrustProxy;
  readonly catalogFile: string | undefined;
  readonly adminToken: string | undefined;
  readonly log: { readonly level: string; readonly format: "json" | "pretty" };
  readonly bodyLimitBytes: number;
  readonly platform: {
    readonly name: string;
    /** Total time a synchronous callback may spend on the platform before answering 503. */
    readonly deadlineMs: number;
  };
  readonly orderNumbers: { readonly prefix: string; readonly start: number };
  readonly shutdownTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"];

/**
 * Reads and validates the configuration. Pure: no file or network access, so it can be tested
 * with a plain object. Throws a ConfigError naming every problem at once.
 */
export function loadConfig(env: Env = process.env, opts: { isTty?: boolean } = {}): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return def;
    }
    return Number(raw);
  };
  const list = (name: string): string[] =>
    (get(name) ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");

  const nodeEnv = get("NODE_ENV");
  const appEnv = nodeEnv === "production" ? "production" : nodeEnv === "test" ? "test" : "development";

  const dataDir = path.resolve(get("DATA_DIR") ?? "./data");

  let database: Config["database"];
  const url = get("DATABASE_URL");
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(url)) problems.push("DATABASE_URL must be a postgres:// or postgresql:// URL");
    const schema = get("DATABASE_SCHEMA");
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      problems.push("DATABASE_SCHEMA must be a lower-case SQL identifier (letters, digits, _)");
    }
    database = { kind: "postgres", url, schema, poolSize: int("DATABASE_POOL_SIZE", 10, 1, 200) };
  } else {
    const sync = (get("SQLITE_SYNCHRONOUS") ?? "FULL").toUpperCase();
    if (sync !== "FULL" && sync !== "NORMAL") problems.push("SQLITE_SYNCHRONOUS must be FULL or NORMAL");
    database = {
      kind: "sqlite",
      file: path.join(dataDir, "orderbridge.sqlite"),
      synchronous: sync === "NORMAL" ? "NORMAL" : "FULL",
    };
  }

  const auth = (get("SP_AUTH") ?? "hmac").toLowerCase();
  if (!["hmac", "ip", "both", "either"].includes(auth)) {
    problems.push(`SP_AUTH must be one of hmac, ip, both, either (got "${auth}")`);
  }
  const hmacSecrets = list("SP_HMAC_SECRETS");
  let allowlist: Allowlist = parseAllowlist([]);
  try {
    allowlist = parseAllowlist(list("SP_ALLOWED_IPS"));
  } catch (e) {
    problems.push(`SP_ALLOWED_IPS: ${(e as Error).message}`);
  }
  const needsIps = auth === "ip" || auth === "both";
  if (needsIps && allowlist.size === 0) {
    problems.push(`SP_AUTH=${auth} needs SP_ALLOWED_IPS (comma-separated addresses or CIDR ranges)`);
  }
  if (appEnv === "production" && auth !== "ip" && hmacSecrets.length === 0 && !(auth === "either" && allowlist.size > 0)) {
    problems.push(
      "SP_HMAC_SECRETS is required in production: set it to the order callback shared secret shown in the Subscribe Pro merchant app " +
        "(orderbridge never accepts unauthenticated callbacks, and only generates a secret outside production)",
    );
  }

  const trustProxy = parseTrustProxy(get("TRUST_PROXY"), problems);

  const level = (get("LOG_LEVEL") ?? "info").toLowerCase();
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  const fmt = get("LOG_FORMAT")?.toLowerCase();
  if (fmt !== undefined && fmt !== "json" && fmt !== "pretty") problems.push("LOG_FORMAT must be json or pretty");
  const format: "json" | "pretty" =
    fmt === "json" || fmt === "pretty" ? fmt : appEnv !== "production" && opts.isTty === true ? "pretty" : "json";

  const bodyLimitBytes = parseBytes(get("BODY_LIMIT") ?? "1mb");
  if (bodyLimitBytes === undefined || bodyLimitBytes < 1024 || bodyLimitBytes > 100 * 1024 * 1024) {
    problems.push('BODY_LIMIT must be a size from 1kb to 100mb, such as "1mb" or "512kb"');
  }

  const platformName = get("PLATFORM") ?? "local";
  if (platformName !== "local") problems.push(`PLATFORM "${platformName}" is not available; the built-in platform is "local"`);

  const prefix = env["ORDER_NUMBER_PREFIX"] ?? "OB-";
  if (!/^[A-Za-z0-9_\-#/.]{0,20}$/.test(prefix)) {
    problems.push("ORDER_NUMBER_PREFIX may hold up to 20 letters, digits or _-#/. characters");
  }

  const adminToken = get("ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push("ADMIN_TOKEN must be at least 16 characters long (use a random value, e.g. `openssl rand -hex 24`)");
  }

  const config: Config = {
    env: appEnv,
    port: int("PORT", 3000, 0, 65535),
    host: get("HOST"),
    dataDir,
    database,
    subscribePro: { hmacSecrets, allowlist, auth: auth as SpAuthMode },
    trustProxy,
    catalogFile: get("CATALOG_FILE") === undefined ? undefined : path.resolve(get("CATALOG_FILE") as string),
    adminToken,
    log: { level, format },
    bodyLimitBytes: bodyLimitBytes ?? 1024 * 1024,
    platform: { name: platformName, deadlineMs: int("PLATFORM_DEADLINE_MS", 20_000, 100, 600_000) },
    orderNumbers: { prefix, start: int("ORDER_NUMBER_START", 100_000, 1, 2 ** 50) },
    shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
  };
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
  return Object.freeze(config);
}

function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined) return false;
  const v = raw.toLowerCase();
  if (["false", "0", "off", "no"].includes(v)) return false;
  if (["true", "on", "yes"].includes(v)) return true;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const e of entries) {
    if (["loopback", "linklocal", "uniquelocal"].includes(e)) continue;
    try {
      parseAllowlist([e]);
    } catch {
      problems.push(
        `TRUST_PROXY: "${e}" is not an address, a CIDR range, a hop count, true/false, or one of loopback, linklocal, uniquelocal`,
      );
    }
  }
  return entries;
}

/** "1mb" → 1048576. Returns undefined when the text is not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = (m[2] ?? "b").toLowerCase();
  const mult = unit === "gb" ? 1024 ** 3 : unit === "mb" ? 1024 ** 2 : unit === "kb" ? 1024 : 1;
  return Math.floor(Number(m[1]) * mult);
}

/** The configuration with secrets masked, for logs and `config check`. */
export function describeConfig(c: Config): Record<string, unknown> {
  const mask = (s: string | undefined): string | undefined => (s === undefined ? undefined : "****");
  return {
    env: c.env,
    port: c.port,
    host: c.host ?? "(all interfaces)",
    dataDir: c.dataDir,
    database:
      c.database.kind === "sqlite"
        ? { kind: "sqlite", file: c.database.file, synchronous: c.database.synchronous }
        : { kind: "postgres", url: c.database.url.replace(/\/\/([^@/]*)@/, "//****@"), schema: c.database.schema, poolSize: c.database.poolSize },
    subscribePro: {
      auth: c.subscribePro.auth,
      hmacSecrets: `${c.subscribePro.hmacSecrets.length} configured`,
      allowedIps: c.subscribePro.allowlist.entries,
    },
    trustProxy: c.trustProxy,
    catalogFile: c.catalogFile ?? "(built-in demo catalog)",
    adminToken: mask(c.adminToken) ?? "(admin API disabled)",
    log: c.log,
    bodyLimitBytes: c.bodyLimitBytes,
    platform: c.platform,
    orderNumbers: c.orderNumbers,
  };
}
