import path from "node:path";
import { ConfigError } from "./errors.js";
import { describeSpec, rawValue, readSpec, type Env, type ReadContext, type Setting, type Spec, type Values } from "./config/settings.js";
import {
  ACCESS,
  HTTP_PLATFORM,
  isModulePath,
  JOBS,
  LOCAL_PLATFORM,
  LOG,
  PLATFORM,
  POSTGRES,
  RECHARGE,
  RETENTION,
  SERVICE,
  SHOPIFY,
  SHOPIFY_SHOP_NEEDED,
  SQLITE,
  SUBSCRIBE_PRO,
  TRACING,
} from "./config/spec.js";

export { maskUrl, parseBytes } from "./config/settings.js";
export { misspeltSettingMessage, misspeltSettings, type MisspeltSetting } from "./config/misspellings.js";
export type { SpAuthMode, TrustProxy } from "./config/spec.js";

/** T with the keys K always set (what a rule between settings guarantees). */
type Present<T, K extends keyof T> = Omit<T, K> & { readonly [P in K]-?: NonNullable<T[P]> };

/**
 * Everything orderbridge reads from its environment, parsed and validated once at start-up. Each
 * value is the one its setting in src/config/spec.ts reads, under the same key.
 */
export type Config = Values<typeof SERVICE> &
  Values<typeof ACCESS> &
  Values<typeof LOCAL_PLATFORM> & {
    readonly database:
      | ({ readonly kind: "sqlite"; readonly file: string; /** WORKERS: the processes that share the file. */ readonly workers: number } & Values<typeof SQLITE>)
      | ({ readonly kind: "postgres" } & Present<Values<typeof POSTGRES>, "url">);
    readonly subscribePro: Values<typeof SUBSCRIBE_PRO>;
    readonly log: Values<typeof LOG>;
    readonly platform: Values<typeof PLATFORM> & {
      readonly http: Present<Values<typeof HTTP_PLATFORM>, "url" | "secret"> | undefined;
      readonly shopify: Present<Values<typeof SHOPIFY>, "shop" | "accessToken"> | undefined;
      /** Absolute path of a custom adapter module (PLATFORM=./my-adapter.js). */
      readonly modulePath: string | undefined;
    };
    /** RECHARGE_WRITEBACK=off is kept as no apiToken. */
    readonly recharge: Omit<Values<typeof RECHARGE>, "writeBack">;
    readonly jobs: Values<typeof JOBS>;
    readonly retention: Values<typeof RETENTION>;
    readonly tracing: Values<typeof TRACING>;
  };

/**
 * Reads and validates the configuration. Pure: no file or network access, so it can be tested
 * with a plain object. Throws a ConfigError naming every problem at once: each setting's own, then
 * those of the rules between settings.
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
  const problem = (message: string): void => void problems.push(message);
  const ctx: ReadContext = { env, isTty: opts.isTty === true, valueOf: (s) => s.read(ctx, () => undefined) };
  const read = <S extends Spec>(spec: S): Values<S> => readSpec(spec, ctx, problem);
  const isSet = (s: Setting<unknown>): boolean => rawValue(env, s.name) !== undefined;

  const service = read(SERVICE);
  // A section is read only where it applies: PostgreSQL's with DATABASE_URL, SQLite's without, a
  // platform's when it is the one chosen.
  const postgres = isSet(POSTGRES.url) ? read(POSTGRES) : undefined;
  const sqlite = postgres === undefined ? read(SQLITE) : undefined;
  const sp = read(SUBSCRIBE_PRO);
  const access = read(ACCESS);
  const log = read(LOG);
  const platform = read(PLATFORM);
  const local = read(LOCAL_PLATFORM);
  const http = platform.name === "http" ? read(HTTP_PLATFORM) : undefined;
  const shopify = platform.name === "shopify" ? read(SHOPIFY) : undefined;
  const { writeBack, ...recharge } = read(RECHARGE);
  const jobs = read(JOBS);
  const retention = read(RETENTION);
  const tracing = read(TRACING);

  // ---- rules between settings ----
  if (postgres === undefined) {
    // Settings for PostgreSQL without DATABASE_URL: the instance would silently run on its own
    // SQLite file, apart from the others it was meant to share a database with.
    for (const s of [POSTGRES.schema, POSTGRES.poolSize, POSTGRES.preparedStatements, POSTGRES.pipeline]) {
      if (isSet(s)) problem(`${s.name} applies to PostgreSQL only: set DATABASE_URL too, or remove ${s.name}`);
    }
  }

  const { auth, allowlist, hmacSecrets } = sp;
  if ((auth === "ip" || auth === "both") && allowlist.size === 0) {
    problem(`SP_AUTH=${auth} needs SP_ALLOWED_IPS (comma-separated addresses or CIDR ranges)`);
  }
  if (opts.forServing !== false && service.env === "production" && auth !== "ip" && hmacSecrets.length === 0 && !(auth === "either" && allowlist.size > 0)) {
    problem(
      "SP_HMAC_SECRETS is required in production: set it to the order callback shared secret shown in the Subscribe Pro merchant app " +
        "(orderbridge never accepts unauthenticated callbacks, and only generates a secret outside production)",
    );
  }
  const trustProxy = service.trustProxy;
  if ((trustProxy === true || typeof trustProxy === "number") && ["ip", "both", "either"].includes(auth)) {
    // Express then takes the client address from X-Forwarded-For as sent by whoever connects: a
    // caller that writes an allowed address there (directly, or ahead of what the proxy appends)
    // passes the allowlist. Only a list of the proxies' own addresses finds the real client.
    problem(
      `TRUST_PROXY=${rawValue(env, SERVICE.trustProxy.name) ?? ""} cannot be used with SP_AUTH=${auth}: with ${trustProxy === true ? "true" : "a hop count"}, the client address is taken ` +
        `from X-Forwarded-For${trustProxy === true ? "" : " even for a client that connects directly, without the proxy"}, so anyone can send ` +
        `"X-Forwarded-For: <an address in SP_ALLOWED_IPS>" and pass the allowlist. Set TRUST_PROXY to the addresses or CIDR ranges your ` +
        `proxies connect from (e.g. TRUST_PROXY=10.0.0.5, or 10.0.0.5,10.0.1.0/24 for two; loopback for a proxy on this machine), ` +
        `or leave it unset when nothing sits in front of orderbridge`,
    );
  }

  if (http !== undefined) {
    if (http.url === undefined) problem("PLATFORM=http needs PLATFORM_HTTP_URL: where orders are POSTed");
    if (http.secret === undefined) {
      problem("PLATFORM=http needs PLATFORM_HTTP_SECRET, the Standard Webhooks key its requests are signed with (generate one with: echo whsec_$(openssl rand -base64 32))");
    }
  }
  if (shopify !== undefined) {
    // A shop that is set but no handle is refused where it is read, with the same words.
    if (!isSet(SHOPIFY.shop)) problem(SHOPIFY_SHOP_NEEDED);
    if (shopify.accessToken === undefined) problem("PLATFORM=shopify needs SHOPIFY_ACCESS_TOKEN: an Admin API access token with write_orders and read_products");
  }

  if (recharge.clientSecrets.length > 0 && recharge.apiToken === undefined && writeBack === "on") {
    problem(
      "RECHARGE_API_TOKEN is required with RECHARGE_CLIENT_SECRETS: orderbridge writes the external order id back to Recharge with it " +
        "(set RECHARGE_WRITEBACK=off to receive webhooks without writing back)",
    );
  }

  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
  // Past this point every rule held: the sections that apply are complete.
  const config: Config = {
    ...service,
    ...access,
    ...local,
    database:
      postgres !== undefined
        ? { kind: "postgres", ...postgres, url: postgres.url as string }
        : { kind: "sqlite", file: path.join(service.dataDir, "orderbridge.sqlite"), workers: service.workers, ...(sqlite as Values<typeof SQLITE>) },
    subscribePro: sp,
    log,
    platform: {
      ...platform,
      http: http === undefined ? undefined : { ...http, url: http.url as string, secret: http.secret as string },
      shopify: shopify === undefined ? undefined : { ...shopify, shop: shopify.shop as string, accessToken: shopify.accessToken as string },
      modulePath: isModulePath(platform.name) ? path.resolve(platform.name) : undefined,
    },
    recharge: { ...recharge, apiToken: writeBack === "off" ? undefined : recharge.apiToken },
    jobs,
    retention,
    tracing,
  };
  return Object.freeze(config);
}

/** The configuration with secrets masked, for logs and `config check`: each setting as its spec describes it. */
export function describeConfig(c: Config): Record<string, unknown> {
  const db = c.database;
  const p = c.platform;
  return {
    ...describeSpec(SERVICE, c),
    database: db.kind === "sqlite" ? { kind: "sqlite", file: db.file, ...describeSpec(SQLITE, db) } : { kind: "postgres", ...describeSpec(POSTGRES, db) },
    subscribePro: describeSpec(SUBSCRIBE_PRO, c.subscribePro),
    ...describeSpec(ACCESS, c),
    log: describeSpec(LOG, c.log),
    platform: {
      ...describeSpec(PLATFORM, p),
      ...(p.http === undefined ? {} : { http: describeSpec(HTTP_PLATFORM, p.http) }),
      ...(p.shopify === undefined ? {} : { shopify: describeSpec(SHOPIFY, p.shopify) }),
      ...(p.modulePath === undefined ? {} : { modulePath: p.modulePath }),
    },
    ...describeSpec(LOCAL_PLATFORM, c),
    recharge: describeSpec(RECHARGE, c.recharge),
    jobs: describeSpec(JOBS, c.jobs),
    retention: describeSpec(RETENTION, c.retention),
    tracing: describeSpec(TRACING, c.tracing),
  };
}
