import { isIP } from "node:net";
import path from "node:path";
import { ConfigError } from "./errors.js";
import { parseAllowlist, type Allowlist } from "./security/ip-allowlist.js";
import { parseSigningKey } from "./security/standard-webhooks.js";
import { MIN_RETENTION_DAYS } from "./store/retention.js";

export type SpAuthMode = "hmac" | "ip" | "both" | "either";
export type TrustProxy = boolean | number | string[];

/** Everything orderbridge reads from its environment, parsed and validated once at start-up. */
export interface Config {
  readonly env: "production" | "development" | "test";
  readonly port: number;
  readonly host: string | undefined;
  readonly dataDir: string;
  readonly database:
    | {
        readonly kind: "sqlite";
        readonly file: string;
        readonly synchronous: "FULL" | "NORMAL";
        readonly groupCommit: boolean;
        /** Start even on a new, empty file (or another database) where DATA_DIR says a database was. */
        readonly allowNewDatabase: boolean;
      }
    | {
        readonly kind: "postgres";
        readonly url: string;
        readonly schema: string | undefined;
        readonly poolSize: number;
        /** Statements with parameters run as named prepared statements (off behind a transaction-pooling proxy). */
        readonly preparedStatements: boolean;
      };
  readonly subscribePro: {
    /** Empty when none was configured: main.ts then generates one (outside production). */
    readonly hmacSecrets: readonly string[];
    readonly allowlist: Allowlist;
    readonly auth: SpAuthMode;
  };
  readonly trustProxy: TrustProxy;
  readonly catalogFile: string | undefined;
  readonly adminToken: string | undefined;
  /** When set, GET /metrics needs it as a bearer token. */
  readonly metricsToken: string | undefined;
  readonly log: {
    readonly level: string;
    readonly format: "json" | "pretty";
    /** Scrub the customer's email, as well as payment values, from what platforms say before it is logged. */
    readonly redactEmail: boolean;
  };
  readonly bodyLimitBytes: number;
  readonly platform: {
    /** local, http, shopify, or the path of a module exporting createPlatform. */
    readonly name: string;
    /** Total time a synchronous callback may spend on the platform before answering 503. */
    readonly deadlineMs: number;
    /** One request's timeout for remote platforms. */
    readonly timeoutMs: number;
    readonly http: { readonly url: string; readonly cartUrl: string | undefined; readonly secret: string } | undefined;
    readonly shopify:
      | { readonly shop: string; readonly accessToken: string; readonly apiVersion: string; readonly apiUrl: string | undefined }
      | undefined;
    /** Absolute path of a custom adapter module (PLATFORM=./my-adapter.js). */
    readonly modulePath: string | undefined;
  };
  readonly orderNumbers: { readonly prefix: string; readonly start: number };
  readonly shutdownTimeoutMs: number;
  /** Processes serving on this machine (node cluster); 1 runs in this process. */
  readonly workers: number;
  readonly recharge: {
    /** Empty: Recharge webhooks are off (the endpoint answers 404). */
    readonly clientSecrets: readonly string[];
    /** Undefined: write-back is off. */
    readonly apiToken: string | undefined;
    readonly apiUrl: string;
    readonly apiVersion: "2021-01" | "2021-11";
    readonly timeoutMs: number;
    readonly rateLimit: { readonly burst: number; readonly perSecond: number };
    readonly signatureToleranceSeconds: number;
    readonly sendOrderNumber: boolean;
  };
  readonly jobs: {
    /** Inbox events (placing orders) run at once by this process. */
    readonly concurrency: number;
    /** Write-back calls run at once by this process (their own lane, under the Recharge rate limit). */
    readonly writebackConcurrency: number;
    readonly pollMs: number;
    readonly leaseMs: number;
    readonly maxAttempts: number;
    readonly backoffBaseMs: number;
    readonly backoffMaxMs: number;
  };
  readonly retention: {
    /** Finished events, write-backs and answered callbacks' bodies are pruned after this; 0 keeps everything. */
    readonly days: number;
    /** How often the service prunes (the first run a minute after start, or sooner when this is shorter). */
    readonly pruneIntervalMs: number;
  };
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"];

/**
 * Reads and validates the configuration. Pure: no file or network access, so it can be tested
 * with a plain object. Throws a ConfigError naming every problem at once.
 */
export function loadConfig(
  env: Env = process.env,
  opts: {
    isTty?: boolean;
    /** false for commands that never serve callbacks (migrate): the callback secret is not required then. */
    forServing?: boolean;
  } = {},
): Config {
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
  const bool = (name: string, def: boolean): boolean => {
    const raw = get(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (["true", "1", "on", "yes"].includes(raw)) return true;
    if (["false", "0", "off", "no"].includes(raw)) return false;
    problems.push(`${name} must be true or false`);
    return def;
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
    database = {
      kind: "postgres",
      url,
      schema,
      poolSize: int("DATABASE_POOL_SIZE", 10, 1, 200),
      preparedStatements: bool("DATABASE_PREPARED_STATEMENTS", true),
    };
  } else {
    // Settings for PostgreSQL without DATABASE_URL: the instance would silently run on its own
    // SQLite file, apart from the others it was meant to share a database with.
    for (const name of ["DATABASE_SCHEMA", "DATABASE_POOL_SIZE", "DATABASE_PREPARED_STATEMENTS"]) {
      if (get(name) !== undefined) problems.push(`${name} applies to PostgreSQL only: set DATABASE_URL too, or remove ${name}`);
    }
    const sync = (get("SQLITE_SYNCHRONOUS") ?? "FULL").toUpperCase();
    if (sync !== "FULL" && sync !== "NORMAL") problems.push("SQLITE_SYNCHRONOUS must be FULL or NORMAL");
    database = {
      kind: "sqlite",
      file: path.join(dataDir, "orderbridge.sqlite"),
      synchronous: sync === "NORMAL" ? "NORMAL" : "FULL",
      groupCommit: bool("SQLITE_GROUP_COMMIT", true),
      allowNewDatabase: bool("SQLITE_ALLOW_NEW_DATABASE", false),
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
  if (
    opts.forServing !== false &&
    appEnv === "production" &&
    auth !== "ip" &&
    hmacSecrets.length === 0 &&
    !(auth === "either" && allowlist.size > 0)
  ) {
    problems.push(
      "SP_HMAC_SECRETS is required in production: set it to the order callback shared secret shown in the Subscribe Pro merchant app " +
        "(orderbridge never accepts unauthenticated callbacks, and only generates a secret outside production)",
    );
  }

  const trustProxy = parseTrustProxy(get("TRUST_PROXY"), problems);
  if ((trustProxy === true || typeof trustProxy === "number") && ["ip", "both", "either"].includes(auth)) {
    // Express then takes the client address from X-Forwarded-For as sent by whoever connects: a
    // caller that writes an allowed address there (directly, or ahead of what the proxy appends)
    // passes the allowlist. Only a list of the proxies' own addresses finds the real client.
    problems.push(
      `TRUST_PROXY=${get("TRUST_PROXY") ?? ""} cannot be used with SP_AUTH=${auth}: with ${trustProxy === true ? "true" : "a hop count"}, the client address is taken ` +
        `from X-Forwarded-For${trustProxy === true ? "" : " even for a client that connects directly, without the proxy"}, so anyone can send ` +
        `"X-Forwarded-For: <an address in SP_ALLOWED_IPS>" and pass the allowlist. Set TRUST_PROXY to the addresses or CIDR ranges your ` +
        `proxies connect from (e.g. TRUST_PROXY=10.0.0.5, or 10.0.0.5,10.0.1.0/24 for two; loopback for a proxy on this machine), ` +
        `or leave it unset when nothing sits in front of orderbridge`,
    );
  }

  const level = (get("LOG_LEVEL") ?? "info").toLowerCase();
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got "${get("LOG_LEVEL") ?? ""}")`);
  const fmt = get("LOG_FORMAT")?.toLowerCase();
  if (fmt !== undefined && fmt !== "json" && fmt !== "pretty") problems.push(`LOG_FORMAT must be json or pretty (got "${get("LOG_FORMAT") ?? ""}")`);
  const format: "json" | "pretty" =
    fmt === "json" || fmt === "pretty" ? fmt : appEnv !== "production" && opts.isTty === true ? "pretty" : "json";

  const bodyLimitBytes = parseBytes(get("BODY_LIMIT") ?? "1mb");
  if (bodyLimitBytes === undefined || bodyLimitBytes < 1024 || bodyLimitBytes > 100 * 1024 * 1024) {
    problems.push('BODY_LIMIT must be a size from 1kb to 100mb, such as "1mb" or "512kb"');
  }

  const platformName = get("PLATFORM") ?? "local";
  const isModule = /^(\.{1,2}\/|\/)|\.(m?js|cjs)$/.test(platformName);
  if (!["local", "http", "shopify"].includes(platformName) && !isModule) {
    problems.push(`PLATFORM "${platformName}" is not available: use local, http, shopify, or the path of an adapter module (./my-adapter.js)`);
  }
  const urlOk = (name: string, v: string | undefined): boolean => {
    if (v !== undefined && !/^https?:\/\/[^\s]+$/.test(v)) {
      problems.push(`${name} must be an http(s) URL`);
      return false;
    }
    return true;
  };
  let httpPlatform: Config["platform"]["http"];
  if (platformName === "http") {
    const url = get("PLATFORM_HTTP_URL");
    const secret = get("PLATFORM_HTTP_SECRET");
    const cartUrl = get("PLATFORM_HTTP_CART_URL");
    if (url === undefined) problems.push("PLATFORM=http needs PLATFORM_HTTP_URL: where orders are POSTed");
    const key = secret === undefined ? undefined : parseSigningKey(secret);
    if (key === undefined) {
      problems.push("PLATFORM=http needs PLATFORM_HTTP_SECRET, the Standard Webhooks key its requests are signed with (generate one with: echo whsec_$(openssl rand -base64 32))");
    } else if (!key.ok) {
      problems.push(key.problem);
    }
    if (urlOk("PLATFORM_HTTP_URL", url) && urlOk("PLATFORM_HTTP_CART_URL", cartUrl) && url !== undefined && secret !== undefined && key?.ok === true) {
      httpPlatform = { url, cartUrl, secret };
    }
  }
  let shopify: Config["platform"]["shopify"];
  if (platformName === "shopify") {
    const shop = get("SHOPIFY_SHOP")?.replace(/^https?:\/\//, "").replace(/\.myshopify\.com\/?$/, "");
    const accessToken = get("SHOPIFY_ACCESS_TOKEN");
    const apiVersion = get("SHOPIFY_API_VERSION") ?? "2025-10";
    const apiUrl = get("SHOPIFY_API_URL");
    if (shop === undefined || !/^[a-z0-9][a-z0-9-]*$/i.test(shop)) problems.push("PLATFORM=shopify needs SHOPIFY_SHOP: the shop's handle (my-shop of my-shop.myshopify.com)");
    if (accessToken === undefined) problems.push("PLATFORM=shopify needs SHOPIFY_ACCESS_TOKEN: an Admin API access token with write_orders and read_products");
    if (!/^(\d{4}-\d{2}|unstable)$/.test(apiVersion)) problems.push("SHOPIFY_API_VERSION must look like 2025-10");
    if (urlOk("SHOPIFY_API_URL", apiUrl) && shop !== undefined && accessToken !== undefined) shopify = { shop, accessToken, apiVersion, apiUrl };
  }

  const prefix = env["ORDER_NUMBER_PREFIX"] ?? "OB-";
  if (!/^[A-Za-z0-9_\-#/.]{0,20}$/.test(prefix)) {
    problems.push("ORDER_NUMBER_PREFIX may hold up to 20 letters, digits or _-#/. characters");
  }

  const metricsToken = get("METRICS_TOKEN");
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push("METRICS_TOKEN must be at least 16 characters long");
  const adminToken = get("ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push("ADMIN_TOKEN must be at least 16 characters long (use a random value, e.g. `openssl rand -hex 24`)");
  }

  const rechargeSecrets = list("RECHARGE_CLIENT_SECRETS");
  const rechargeToken = get("RECHARGE_API_TOKEN");
  const writeBack = (get("RECHARGE_WRITEBACK") ?? "on").toLowerCase();
  if (!["on", "off"].includes(writeBack)) problems.push("RECHARGE_WRITEBACK must be on or off");
  if (rechargeSecrets.length > 0 && rechargeToken === undefined && writeBack === "on") {
    problems.push(
      "RECHARGE_API_TOKEN is required with RECHARGE_CLIENT_SECRETS: orderbridge writes the external order id back to Recharge with it " +
        "(set RECHARGE_WRITEBACK=off to receive webhooks without writing back)",
    );
  }
  const rechargeUrl = get("RECHARGE_API_URL") ?? "https://api.rechargeapps.com";
  if (!/^https?:\/\/[^\s]+$/.test(rechargeUrl)) problems.push("RECHARGE_API_URL must be an http(s) URL");
  const rechargeVersion = get("RECHARGE_API_VERSION") ?? "2021-11";
  if (rechargeVersion !== "2021-01" && rechargeVersion !== "2021-11") problems.push("RECHARGE_API_VERSION must be 2021-01 or 2021-11");
  const perSecondRaw = get("RECHARGE_RATE_LIMIT_PER_SECOND") ?? "2";
  const perSecond = Number(perSecondRaw);
  if (!/^\d+(\.\d+)?$/.test(perSecondRaw) || perSecond <= 0 || perSecond > 1000) {
    problems.push("RECHARGE_RATE_LIMIT_PER_SECOND must be a number above 0 and at most 1000 (requests per second)");
  }
  const retentionDays = int("RETENTION_DAYS", 30, 0, 36_500);
  if (retentionDays > 0 && retentionDays < MIN_RETENTION_DAYS) {
    problems.push(
      `RETENTION_DAYS must be 0 (keep everything) or at least ${MIN_RETENTION_DAYS} (got ${retentionDays}): a placed order's stored ` +
        "answer must outlive any retry Subscribe Pro can make of its callback",
    );
  }
  const platformDeadlineMs = int("PLATFORM_DEADLINE_MS", 20_000, 100, 600_000);
  const rechargeTimeoutMs = int("RECHARGE_TIMEOUT_MS", 10_000, 100, 120_000);

  const config: Config = {
    env: appEnv,
    port: int("PORT", 3000, 0, 65535),
    host: parseHost(get("HOST"), problems),
    dataDir,
    database,
    subscribePro: { hmacSecrets, allowlist, auth: auth as SpAuthMode },
    trustProxy,
    catalogFile: get("CATALOG_FILE") === undefined ? undefined : path.resolve(get("CATALOG_FILE") as string),
    adminToken,
    metricsToken,
    log: { level, format, redactEmail: bool("LOG_REDACT_EMAIL", false) },
    bodyLimitBytes: bodyLimitBytes ?? 1024 * 1024,
    platform: {
      name: platformName,
      deadlineMs: platformDeadlineMs,
      timeoutMs: int("PLATFORM_TIMEOUT_MS", 10_000, 100, 600_000),
      http: httpPlatform,
      shopify,
      modulePath: isModule ? path.resolve(platformName) : undefined,
    },
    orderNumbers: { prefix, start: int("ORDER_NUMBER_START", 100_000, 1, 2 ** 50) },
    shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
    workers: int("WORKERS", 1, 1, 64),
    recharge: {
      clientSecrets: rechargeSecrets,
      apiToken: writeBack === "off" ? undefined : rechargeToken,
      apiUrl: rechargeUrl,
      apiVersion: rechargeVersion === "2021-01" ? "2021-01" : "2021-11",
      timeoutMs: rechargeTimeoutMs,
      rateLimit: { burst: int("RECHARGE_RATE_LIMIT_BURST", 40, 1, 10_000), perSecond: perSecond > 0 ? perSecond : 2 },
      signatureToleranceSeconds: int("RECHARGE_SIGNATURE_TOLERANCE_S", 172_800, 1, 30 * 86_400),
      sendOrderNumber: bool("RECHARGE_WRITEBACK_ORDER_NUMBER", true),
    },
    jobs: {
      concurrency: int("WORKER_CONCURRENCY", 4, 0, 64),
      writebackConcurrency: int("RECHARGE_WRITEBACK_CONCURRENCY", 4, 0, 64),
      pollMs: int("WORKER_POLL_MS", 1000, 10, 60_000),
      // Long enough for the slowest job: a platform call, or a Recharge call after its rate-limit wait.
      leaseMs: int("JOB_LEASE_MS", Math.max(60_000, 2 * Math.max(platformDeadlineMs, rechargeTimeoutMs)), 500, 3_600_000),
      maxAttempts: int("JOB_MAX_ATTEMPTS", 20, 1, 1000),
      backoffBaseMs: int("JOB_BACKOFF_BASE_MS", 1000, 1, 3_600_000),
      backoffMaxMs: int("JOB_BACKOFF_MAX_MS", 300_000, 1, 86_400_000),
    },
    retention: { days: retentionDays, pruneIntervalMs: int("PRUNE_INTERVAL_MS", 3_600_000, 1000, 7 * 86_400_000) },
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

/** HOST: an IPv4 or IPv6 address, or a host name (letters, digits, hyphens, dots). */
function parseHost(raw: string | undefined, problems: string[]): string | undefined {
  if (raw === undefined) return undefined;
  const hostname = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
  if (isIP(raw) === 0 && !hostname.test(raw)) {
    problems.push(`HOST must be an IP address or a host name to listen on, such as 127.0.0.1, :: or localhost (got "${raw}")`);
  }
  return raw;
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

/** How PLATFORM_HTTP_SECRET is read, never its value: a plain base64 key shows it is decoded. */
function describeSigningKey(secret: string): string {
  const k = parseSigningKey(secret);
  if (!k.ok) return "****";
  const form = { whsec: "whsec_<base64>", base64: "<base64>", raw: "raw:<text>" }[k.key.format];
  return `**** (${form}, ${k.key.bytes} bytes)`;
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
        ? { kind: "sqlite", file: c.database.file, synchronous: c.database.synchronous, groupCommit: c.database.groupCommit, allowNewDatabase: c.database.allowNewDatabase }
        : { kind: "postgres", url: maskUrl(c.database.url), schema: c.database.schema, poolSize: c.database.poolSize, preparedStatements: c.database.preparedStatements },
    subscribePro: {
      auth: c.subscribePro.auth,
      hmacSecrets: `${c.subscribePro.hmacSecrets.length} configured`,
      allowedIps: c.subscribePro.allowlist.entries,
    },
    trustProxy: c.trustProxy,
    catalogFile: c.catalogFile ?? "(built-in demo catalog)",
    adminToken: mask(c.adminToken) ?? "(admin API disabled)",
    metricsToken: mask(c.metricsToken) ?? "(GET /metrics open)",
    log: c.log,
    bodyLimitBytes: c.bodyLimitBytes,
    platform: {
      name: c.platform.name,
      deadlineMs: c.platform.deadlineMs,
      timeoutMs: c.platform.timeoutMs,
      ...(c.platform.http === undefined
        ? {}
        : {
            http: {
              url: maskUrl(c.platform.http.url),
              cartUrl: c.platform.http.cartUrl === undefined ? undefined : maskUrl(c.platform.http.cartUrl),
              secret: describeSigningKey(c.platform.http.secret),
            },
          }),
      ...(c.platform.shopify === undefined ? {} : { shopify: { ...c.platform.shopify, accessToken: "****" } }),
      ...(c.platform.modulePath === undefined ? {} : { modulePath: c.platform.modulePath }),
    },
    orderNumbers: c.orderNumbers,
    workers: c.workers,
    recharge: {
      webhooks: c.recharge.clientSecrets.length > 0 ? `on (${c.recharge.clientSecrets.length} client secret(s))` : "off (no RECHARGE_CLIENT_SECRETS)",
      writeBack: c.recharge.apiToken === undefined ? "off" : "on (token ****)",
      apiUrl: maskUrl(c.recharge.apiUrl),
      apiVersion: c.recharge.apiVersion,
      timeoutMs: c.recharge.timeoutMs,
      rateLimit: c.recharge.rateLimit,
      signatureToleranceSeconds: c.recharge.signatureToleranceSeconds,
      sendOrderNumber: c.recharge.sendOrderNumber,
    },
    jobs: c.jobs,
    retention: {
      days: c.retention.days === 0 ? "0 (keep everything)" : c.retention.days,
      pruneIntervalMs: c.retention.pruneIntervalMs,
    },
  };
}
