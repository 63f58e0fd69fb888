import { isIP } from "node:net";
import { parseAllowlist, type Allowlist } from "../security/ip-allowlist.js";
import { parseSigningKey } from "../security/standard-webhooks.js";
import { MIN_RETENTION_DAYS } from "../store/retention.js";
import { HANDLED_TOPICS, type HandledTopic } from "../recharge/order.js";
import { bool, bytes, custom, decimal, duration, filePath, int, list, maskUrl, oneOf, splitList, text, token, url, type Spec } from "./settings.js";

/**
 * Every setting orderbridge reads from its environment, once: section by section, each under the
 * key its value has in Config. The parser (src/config.ts), the masked description (`config check`,
 * the start-up log) and the README's configuration table (`npm run docs:config`) are made from this.
 * Rules between settings (TRUST_PROXY with SP_AUTH, what PLATFORM=http needs, …) are in loadConfig.
 */

export type SpAuthMode = "hmac" | "ip" | "both" | "either";
export type TrustProxy = boolean | number | string[];

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"] as const;

const nodeEnv = custom<"production" | "development" | "test">("NODE_ENV", {
  values: "`production`, `test`; anything else is `development`",
  default: "development",
  defaultText: "`development`",
  help: "`production` refuses to start without a callback secret and logs JSON",
  parse: (raw) => (raw === "production" ? "production" : raw === "test" ? "test" : "development"),
});

export const SERVICE = {
  port: int("PORT", { default: 3000, min: 0, max: 65535, help: "HTTP port (`0` picks a free one)" }),
  host: custom<string | undefined>("HOST", {
    values: "an IP address or a host name",
    default: undefined,
    defaultText: "all interfaces",
    help: "address to listen on, e.g. `127.0.0.1`, `::1` or `localhost`",
    parse: (raw, problem) => {
      if (isIP(raw) === 0 && !HOSTNAME.test(raw)) {
        problem(`HOST must be an IP address or a host name to listen on, such as 127.0.0.1, :: or localhost (got "${raw}")`);
      }
      return raw;
    },
    describe: (v) => v ?? "(all interfaces)",
  }),
  env: nodeEnv,
  dataDir: filePath("DATA_DIR", {
    default: "./data",
    help: "the embedded SQLite database (`orderbridge.sqlite`, created readable by its owner only: it holds customers' names and addresses) and the generated secret",
  }),
  bodyLimitBytes: bytes("BODY_LIMIT", { default: "1mb", min: "1kb", max: "100mb", help: "largest request body (`512kb`, `2mb`, …)" }),
  workers: int("WORKERS", {
    default: 1,
    min: 1,
    max: 64,
    help: "processes serving on this machine (node `cluster`, one shared port); a worker that dies is replaced",
  }),
  shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", {
    default: 10_000,
    min: 0,
    max: 600_000,
    help: "on SIGTERM/SIGINT, how long in-flight requests and jobs may finish (unfinished jobs are given back to the queue)",
  }),
  trustProxy: custom<TrustProxy>("TRUST_PROXY", {
    values: "addresses, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`; a hop count; `true`/`false`",
    default: false,
    defaultText: "off",
    help:
      'which proxies may set `X-Forwarded-For` (Express `trust proxy`), see "Behind a proxy or load balancer"; `true` or a hop count only with ' +
      "`SP_AUTH=hmac`. Off means the socket address is the client, so a forged header changes nothing",
    parse: parseTrustProxy,
  }),
  publicUrl: url("PUBLIC_URL", {
    help:
      "the base URL the world reaches this service at (`https://orders.example.com`, a path prefix allowed): with it, the Recharge webhooks " +
      'are checked at start and every `RECHARGE_WEBHOOK_CHECK_INTERVAL` (see "If Recharge stops sending")',
    check: (v) => (v !== undefined && (/[?#]/.test(v) || new URL(v).hostname === "") ? "PUBLIC_URL must be a base URL without a query or fragment" : undefined),
  }),
} satisfies Spec;

export const POSTGRES = {
  url: text("DATABASE_URL", {
    values: "`postgres://` or `postgresql://` URL",
    pattern: { re: /^postgres(ql)?:\/\//, message: "DATABASE_URL must be a postgres:// or postgresql:// URL" },
    help: "`postgres://user:pass@host:5432/db`: use PostgreSQL instead of SQLite",
    describe: (v) => (v === undefined ? undefined : maskUrl(v)),
  }),
  schema: text("DATABASE_SCHEMA", {
    values: "lower-case SQL identifier",
    pattern: { re: /^[a-z_][a-z0-9_]{0,62}$/, message: "DATABASE_SCHEMA must be a lower-case SQL identifier (letters, digits, _)" },
    defaultText: "the connection's `search_path`",
    help:
      "PostgreSQL schema for orderbridge's tables (created if missing); like the three below, refused without `DATABASE_URL` (the instance " +
      "would otherwise run on a SQLite file of its own)",
  }),
  poolSize: int("DATABASE_POOL_SIZE", { default: 10, min: 1, max: 200, help: "PostgreSQL connections" }),
  preparedStatements: bool("DATABASE_PREPARED_STATEMENTS", {
    default: true,
    help:
      "run statements as named prepared statements on PostgreSQL; set `false` behind a proxy that pools transactions without supporting them " +
      "(PgBouncer before 1.21, or without `max_prepared_statements`)",
  }),
  pipeline: bool("DATABASE_PIPELINE", {
    default: true,
    help:
      "send a transaction's BEGIN with its first statement, in one write and one batch of the extended protocol (a round trip and a system " +
      "call fewer per transaction; the statement runs only if BEGIN succeeded); set `false` behind a proxy that does not take such batches",
  }),
} satisfies Spec;

export const SQLITE = {
  synchronous: oneOf("SQLITE_SYNCHRONOUS", ["FULL", "NORMAL"], {
    default: "FULL",
    fold: "upper",
    got: "none",
    help: '`FULL`: no answer before its data is on disk (survives power loss; the flush runs off the event loop, see "Storage"); `NORMAL` survives process crashes only',
  }),
  groupCommit: bool("SQLITE_GROUP_COMMIT", {
    default: true,
    help: "transactions of one event-loop turn share one commit (one fsync); each is still answered only once durable. `false`: one commit per transaction",
  }),
  walSync: oneOf("SQLITE_WAL_SYNC", ["auto", "event-loop", "thread-pool"], {
    default: "auto",
    fold: "lower",
    got: "raw",
    help:
      "with `FULL`: where the write-ahead log's flush (fdatasync) runs. `thread-pool`: on libuv's thread pool, the event loop serving on meanwhile " +
      "(for a slow disk); `event-loop`: on the event loop, no hand-off to a thread and back (less latency and CPU per commit on a quick disk); " +
      '`auto`: on the event loop while its flushes there take under 1 ms (the median of the last eight; none of 10 ms), with group commit on and `WORKERS=1`, else on the thread pool, timing the disk again once a second (see "Storage")',
  }),
  allowNewDatabase: bool("SQLITE_ALLOW_NEW_DATABASE", {
    default: false,
    help:
      "`true`: start although `DATA_DIR/database-id` names a database that is not there: create a new, empty one (or use the other file found) " +
      'and name it in the marker from then on. For one start; remove it afterwards (see "Storage")',
  }),
} satisfies Spec;

export const SUBSCRIBE_PRO = {
  hmacSecrets: list("SP_HMAC_SECRETS", {
    secret: true,
    defaultText: "generated outside production",
    help: "shared secrets; any one verifies (rotation: add the new one, switch Subscribe Pro over, remove the old)",
    describe: (v) => `${v.length} configured`,
  }),
  allowlist: custom<Allowlist>("SP_ALLOWED_IPS", {
    values: "comma-separated addresses and CIDR ranges",
    default: () => parseAllowlist([]),
    help: "IPv4 and IPv6 (`203.0.113.0/24, 2001:db8::/32`); IPv4-mapped IPv6 clients match IPv4 entries",
    parse: (raw, problem, fallback) => {
      try {
        return parseAllowlist(splitList(raw));
      } catch (e) {
        problem(`SP_ALLOWED_IPS: ${(e as Error).message}`);
        return fallback();
      }
    },
    describeAs: "allowedIps",
    describe: (v) => v.entries,
  }),
  auth: oneOf<SpAuthMode>("SP_AUTH", ["hmac", "ip", "both", "either"], {
    default: "hmac",
    fold: "lower",
    got: "folded",
    help: "`hmac`: valid signature required; `ip`: allowed address required; `both`: both; `either`: one of the two",
  }),
} satisfies Spec;

export const ACCESS = {
  adminToken: token("ADMIN_TOKEN", {
    minLength: 16,
    hint: "use a random value, e.g. `openssl rand -hex 24`",
    help: "enables `/admin/*` with `Authorization: Bearer <token>`; unset, `/admin` answers 404",
    describe: (v) => (v === undefined ? "(admin API disabled)" : "****"),
  }),
  metricsToken: token("METRICS_TOKEN", {
    minLength: 16,
    help: "when set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`; unset, it is open",
    describe: (v) => (v === undefined ? "(GET /metrics open)" : "****"),
  }),
  buildCommit: text("BUILD_COMMIT", {
    values: "a commit id",
    pattern: { re: /^[0-9A-Za-z._-]{1,64}$/, message: "BUILD_COMMIT: a commit id (letters, digits and . _ -, up to 64 characters)" },
    help: "the commit this build is of (e.g. `$(git rev-parse HEAD)`), the `commit` label of `orderbridge_build_info`; unset, the label is empty",
  }),
} satisfies Spec;

export const LOG = {
  level: oneOf<string>("LOG_LEVEL", LOG_LEVELS, { default: "info", fold: "lower", got: "raw", help: "how much is logged, from `error` (least) to `silly`" }),
  format: oneOf("LOG_FORMAT", ["json", "pretty"], {
    default: (ctx) => (ctx.valueOf(nodeEnv) !== "production" && ctx.isTty ? "pretty" : "json"),
    defaultText: "`pretty` in a terminal (outside production), else `json`",
    fold: "lower",
    got: "raw",
    help: "`json` (one object a line) or `pretty`",
  }),
  redactEmail: bool("LOG_REDACT_EMAIL", {
    default: false,
    help: "`true`: the customer's email is scrubbed too, like payment values, from what a platform writes in an error before it is logged or kept as a last error",
  }),
} satisfies Spec;

const platformDeadline = int("PLATFORM_DEADLINE_MS", {
  default: 20_000,
  min: 100,
  max: 600_000,
  help: "longest time a callback may spend on the platform before answering 503",
});

export const PLATFORM = {
  name: custom("PLATFORM", {
    values: "`local`, `http`, `shopify`, or a module path",
    default: "local",
    defaultText: "`local`",
    help: "where orders go: `local`, `http`, `shopify`, or the path of an adapter module (`./my-adapter.mjs`)",
    parse: (raw, problem) => {
      if (!["local", "http", "shopify"].includes(raw) && !isModulePath(raw)) {
        problem(`PLATFORM "${raw}" is not available: use local, http, shopify, or the path of an adapter module (./my-adapter.js)`);
      }
      return raw;
    },
  }),
  deadlineMs: platformDeadline,
  timeoutMs: int("PLATFORM_TIMEOUT_MS", {
    default: 10_000,
    min: 100,
    max: 600_000,
    help: "one request's timeout to a remote platform (attempts are retried within `PLATFORM_DEADLINE_MS`)",
  }),
} satisfies Spec;

/** PLATFORM=./my-adapter.js (or an absolute path, or a .js/.mjs/.cjs file name). */
export function isModulePath(name: string): boolean {
  return /^(\.{1,2}\/|\/)|\.(m?js|cjs)$/.test(name);
}

export const LOCAL_PLATFORM = {
  catalogFile: filePath("CATALOG_FILE", {
    defaultText: "built-in demo catalog",
    help: "JSON catalog of the local platform (see below)",
    describe: (v) => v ?? "(built-in demo catalog)",
  }),
  orderNumbers: {
    prefix: text("ORDER_NUMBER_PREFIX", {
      values: "up to 20 letters, digits or `_-#/.`",
      default: "OB-",
      // As set: spaces are refused, and an empty prefix is one.
      untrimmed: true,
      pattern: { re: /^[A-Za-z0-9_\-#/.]{0,20}$/, message: "ORDER_NUMBER_PREFIX may hold up to 20 letters, digits or _-#/. characters" },
      help: "prefix of local order numbers (`OB-100000`)",
    }),
    start: int("ORDER_NUMBER_START", { default: 100_000, min: 1, max: 2 ** 50, help: "first local order id (used when the database is created)" }),
  },
} satisfies Spec;

export const HTTP_PLATFORM = {
  url: url("PLATFORM_HTTP_URL", { help: "`PLATFORM=http`: where orders are POSTed" }),
  cartUrl: url("PLATFORM_HTTP_CART_URL", { help: "`PLATFORM=http`: where `cart.clear` is POSTed (without it, carts are not cleared)" }),
  secret: custom<string | undefined>("PLATFORM_HTTP_SECRET", {
    values: "`whsec_<base64>`, `<base64>` or `raw:<ASCII text>`, 16+ bytes",
    secret: true,
    default: undefined,
    help: '`PLATFORM=http`: the Standard Webhooks signing key (see "The signing key")',
    parse: (raw, problem) => {
      const key = parseSigningKey(raw);
      if (!key.ok) problem(key.problem);
      return raw;
    },
    describe: (v) => (v === undefined ? undefined : describeSigningKey(v)),
  }),
} satisfies Spec;

export const SHOPIFY_SHOP_NEEDED = "PLATFORM=shopify needs SHOPIFY_SHOP: the shop's handle (my-shop of my-shop.myshopify.com)";

export const SHOPIFY = {
  shop: custom<string | undefined>("SHOPIFY_SHOP", {
    values: "a shop handle, or its `myshopify.com` host",
    default: undefined,
    help: "`PLATFORM=shopify`: the shop's handle (`tea-shop` or `tea-shop.myshopify.com`)",
    parse: (raw, problem) => {
      const shop = raw.replace(/^https?:\/\//, "").replace(/\.myshopify\.com\/?$/, "");
      if (/^[a-z0-9][a-z0-9-]*$/i.test(shop)) return shop;
      problem(SHOPIFY_SHOP_NEEDED);
      return undefined;
    },
  }),
  accessToken: text("SHOPIFY_ACCESS_TOKEN", { values: "text", secret: true, help: "`PLATFORM=shopify`: the custom app's Admin API access token" }),
  apiVersion: text("SHOPIFY_API_VERSION", {
    values: "`YYYY-MM` or `unstable`",
    default: "2025-10",
    pattern: { re: /^(\d{4}-\d{2}|unstable)$/, message: "SHOPIFY_API_VERSION must look like 2025-10" },
    help: "`PLATFORM=shopify`: the Admin API version, always explicit",
  }),
  apiUrl: url("SHOPIFY_API_URL", {
    defaultText: "`https://<shop>.myshopify.com`",
    help: "`PLATFORM=shopify`: another base URL (a proxy, a test server)",
  }),
} satisfies Spec;

const rechargeApiVersion = oneOf("RECHARGE_API_VERSION", ["2021-01", "2021-11"], {
  default: "2021-11",
  fold: "exact",
  got: "none",
  help: "version assumed when a payload's shape does not tell; the sweep reads orders in it",
});
const rechargeTimeout = int("RECHARGE_TIMEOUT_MS", { default: 10_000, min: 100, max: 120_000, help: "timeout of one Recharge API call" });

export const RECHARGE = {
  clientSecrets: list("RECHARGE_CLIENT_SECRETS", {
    secret: true,
    defaultText: "– (webhooks off)",
    help: "Recharge API client secrets that sign webhooks; any one verifies",
    describeAs: "webhooks",
    describe: (v) => (v.length > 0 ? `on (${v.length} client secret(s))` : "off (no RECHARGE_CLIENT_SECRETS)"),
  }),
  apiToken: text("RECHARGE_API_TOKEN", {
    values: "text",
    secret: true,
    help: "Recharge API token for the write-back (`X-Recharge-Access-Token`); required with `RECHARGE_CLIENT_SECRETS` unless `RECHARGE_WRITEBACK=off`",
    describeAs: "writeBack",
    describe: (v) => (v === undefined ? "off" : "on (token ****)"),
  }),
  writeBack: oneOf("RECHARGE_WRITEBACK", ["on", "off"], {
    default: "on",
    fold: "lower",
    got: "none",
    help: "`off`: place orders from webhooks but write nothing back",
    // Kept as apiToken: none when off.
    described: false,
  }),
  apiUrl: url("RECHARGE_API_URL", { default: "https://api.rechargeapps.com", help: "Recharge API base URL" }),
  apiVersion: rechargeApiVersion,
  timeoutMs: rechargeTimeout,
  rateLimit: {
    burst: int("RECHARGE_RATE_LIMIT_BURST", { default: 40, min: 1, max: 10_000, help: "Recharge calls allowed at once (bucket size, shared by all instances)" }),
    perSecond: decimal("RECHARGE_RATE_LIMIT_PER_SECOND", {
      default: 2,
      above: 0,
      max: 1000,
      unit: "requests per second",
      help: "Recharge calls per second after the burst (decimals allowed)",
    }),
  },
  signatureToleranceSeconds: int("RECHARGE_SIGNATURE_TOLERANCE_S", {
    default: 172_800,
    min: 1,
    max: 30 * 86_400,
    help: "how far (either way) a timestamp-bound signature may be from now",
  }),
  sendOrderNumber: bool("RECHARGE_WRITEBACK_ORDER_NUMBER", { default: true, help: "send `external_order_number` with the order write-back" }),
  // The webhook registrations orderbridge wants at Recharge (not "webhooks": that is whether it receives them).
  subscriptions: {
    topics: custom<readonly HandledTopic[]>("RECHARGE_WEBHOOK_TOPICS", {
      values: HANDLED_TOPICS.map((t) => `\`${t}\``).join(", ") + ", comma-separated",
      default: HANDLED_TOPICS,
      defaultText: "all four",
      help: "the webhooks `orderbridge recharge webhooks` and the periodic check want registered (leave out `checkout/processed` with Shopify-hosted checkout)",
      parse: parseTopics,
      describe: (v) => v.join(","),
    }),
    version: oneOf("RECHARGE_WEBHOOK_VERSION", ["2021-01", "2021-11"], {
      default: (ctx) => ctx.valueOf(rechargeApiVersion),
      defaultText: "`RECHARGE_API_VERSION`",
      fold: "exact",
      got: "none",
      help: "the explicit `version` the webhooks are registered with (one without a version gets the store's default: it counts as wrong)",
    }),
    checkIntervalMs: duration("RECHARGE_WEBHOOK_CHECK_INTERVAL", {
      default: 15 * 60_000,
      min: 1000,
      max: 7 * 86_400_000,
      help: "with `PUBLIC_URL`: how often the registered webhooks are compared with the wanted ones (`GET /webhooks`)",
    }),
    autosync: bool("RECHARGE_WEBHOOKS_AUTOSYNC", {
      default: false,
      help: "with `PUBLIC_URL`: repair what the check finds (create missing webhooks, correct a wrong version or address), as `orderbridge recharge webhooks sync` does",
    }),
  },
  sweep: {
    intervalMs: duration("RECHARGE_SWEEP_INTERVAL", {
      default: 10 * 60_000,
      min: 100,
      max: 7 * 86_400_000,
      zero: "off",
      help: "how often one instance lists the Recharge orders updated since the last sweep and places any that was missed (needs `RECHARGE_API_TOKEN`); `0` turns it off",
    }),
    lookbackMs: duration("RECHARGE_SWEEP_LOOKBACK", {
      default: 72 * 3_600_000,
      min: 60_000,
      max: 90 * 86_400_000,
      help: "how far back the first sweep of a database looks (later ones start where the last ended)",
    }),
    rateShare: decimal("RECHARGE_SWEEP_RATE_SHARE", {
      default: 0.25,
      above: 0,
      max: 1,
      unit: "a share of the rate limit",
      help:
        "the share of the Recharge rate limit the sweep may use: it sends only while the bucket has more than `(1 − share) × RECHARGE_RATE_LIMIT_BURST` " +
        "slots free, and at most `share × RECHARGE_RATE_LIMIT_PER_SECOND` calls per second",
    }),
    cursorParam: oneOf("RECHARGE_SWEEP_CURSOR_PARAM", ["cursor", "page_info"], {
      default: "cursor",
      fold: "lower",
      got: "raw",
      help: "the query parameter a next page's cursor is sent in (Recharge's reference shows both)",
    }),
  },
} satisfies Spec;

export const JOBS = {
  concurrency: int("WORKER_CONCURRENCY", {
    default: 4,
    min: 0,
    max: 64,
    help: "inbox events (received webhooks: placing orders) run at once by this process; `0` runs none",
  }),
  writebackConcurrency: int("RECHARGE_WRITEBACK_CONCURRENCY", {
    default: 4,
    min: 0,
    max: 64,
    help: "write-backs run at once by this process, in their own lane under the rate limit; `0` runs none",
  }),
  pollMs: int("WORKER_POLL_MS", { default: 1000, min: 10, max: 60_000, help: "how often an idle worker looks for due jobs (new work wakes it at once)" }),
  leaseMs: int("JOB_LEASE_MS", {
    // Long enough for the slowest job: a platform call, or a Recharge call after its rate-limit wait.
    default: (ctx) => Math.max(60_000, 2 * Math.max(ctx.valueOf(platformDeadline), ctx.valueOf(rechargeTimeout))),
    defaultText: "`max(60000, 2 × the longer of PLATFORM_DEADLINE_MS and RECHARGE_TIMEOUT_MS)`",
    min: 500,
    max: 3_600_000,
    help:
      "how long a worker owns a job without renewing it: a running job's lease is renewed every third of it, so a job may run longer; a job " +
      "whose worker died is requeued once its lease runs out (looked for every `WORKER_POLL_MS`)",
  }),
  maxAttempts: int("JOB_MAX_ATTEMPTS", { default: 20, min: 1, max: 1000, help: "attempts before a job is dead" }),
  backoffBaseMs: int("JOB_BACKOFF_BASE_MS", { default: 1000, min: 1, max: 3_600_000, help: "delay before the first retry (doubling, with jitter)" }),
  backoffMaxMs: int("JOB_BACKOFF_MAX_MS", { default: 300_000, min: 1, max: 86_400_000, help: "longest delay between two attempts" }),
} satisfies Spec;

export const RETENTION = {
  days: int("RETENTION_DAYS", {
    default: 30,
    min: 0,
    max: 36_500,
    check: (days) =>
      days > 0 && days < MIN_RETENTION_DAYS
        ? `RETENTION_DAYS must be 0 (keep everything) or at least ${MIN_RETENTION_DAYS} (got ${days}): a placed order's stored ` +
          "answer must outlive any retry Subscribe Pro can make of its callback"
        : undefined,
    help:
      "finished events and write-backs, and the stored answers of placed callbacks, are pruned this many days after they finished (see " +
      `"Retention"); \`0\` keeps everything; at least \`${MIN_RETENTION_DAYS}\` otherwise`,
    describe: (days) => (days === 0 ? "0 (keep everything)" : days),
  }),
  pruneIntervalMs: int("PRUNE_INTERVAL_MS", {
    default: 3_600_000,
    min: 1000,
    max: 7 * 86_400_000,
    help: "how often the service prunes (the first time a minute after start, or after this when shorter)",
  }),
} satisfies Spec;

export const TRACING = {
  endpoint: url("OTEL_EXPORTER_OTLP_ENDPOINT", {
    help:
      "OpenTelemetry collector (OTLP over HTTP, e.g. `http://otel-collector:4318`): traces go to `<url>/v1/traces`. Tracing is off, and its " +
      "SDK never loaded, without it or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`",
  }),
  tracesEndpoint: url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", { help: "the traces URL itself (used as given, instead of `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`)" }),
  headers: custom<Readonly<Record<string, string>>>("OTEL_EXPORTER_OTLP_HEADERS", {
    values: "`name=value` pairs, comma-separated (values percent-encoded)",
    default: {},
    defaultText: "none",
    secret: true,
    help: "headers sent with every export, e.g. `Authorization=Bearer%20<token>` for a hosted collector",
    parse: parseOtlpHeaders,
    describe: (h) => (Object.keys(h).length === 0 ? "(none)" : Object.fromEntries(Object.keys(h).map((k) => [k, "****"]))),
  }),
  serviceName: text("OTEL_SERVICE_NAME", { values: "text", default: "orderbridge", help: "`service.name` of the traces" }),
} satisfies Spec;

/** The sections in the README's order, with the title of their rows. */
export const SECTIONS: readonly { readonly title: string; readonly spec: Spec }[] = [
  { title: "Service", spec: SERVICE },
  { title: "Database: PostgreSQL (with `DATABASE_URL`)", spec: POSTGRES },
  { title: "Database: SQLite (without `DATABASE_URL`)", spec: SQLITE },
  { title: "Subscribe Pro callbacks", spec: SUBSCRIBE_PRO },
  { title: "Admin API and metrics", spec: ACCESS },
  { title: "Logs", spec: LOG },
  { title: "Platform", spec: PLATFORM },
  { title: "The local platform (`PLATFORM=local`)", spec: LOCAL_PLATFORM },
  { title: "The merchant's own system (`PLATFORM=http`)", spec: HTTP_PLATFORM },
  { title: "Shopify (`PLATFORM=shopify`)", spec: SHOPIFY },
  { title: "Recharge webhooks and write-back", spec: RECHARGE },
  { title: "Jobs (inbox events and write-backs)", spec: JOBS },
  { title: "Retention", spec: RETENTION },
  { title: "Tracing (OpenTelemetry)", spec: TRACING },
];

/** OTEL_EXPORTER_OTLP_HEADERS as the OpenTelemetry specification writes it: `a=b,c=d`, values percent-encoded. */
function parseOtlpHeaders(raw: string, problem: (message: string) => void): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of splitList(raw)) {
    const eq = pair.indexOf("=");
    const name = eq < 0 ? "" : pair.slice(0, eq).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      problem(`OTEL_EXPORTER_OTLP_HEADERS: each entry must be name=value with a header name (entry ${JSON.stringify(name === "" ? pair.split("=")[0] : name)} is not)`);
      continue;
    }
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      problem(`OTEL_EXPORTER_OTLP_HEADERS: the value of ${name} is not percent-encoded text`);
      continue;
    }
    headers[name] = value;
  }
  return headers;
}

function parseTopics(raw: string, problem: (message: string) => void): readonly HandledTopic[] {
  const topics: HandledTopic[] = [];
  for (const t of splitList(raw)) {
    const topic = t.toLowerCase().replace(/[-_]/, "/");
    if ((HANDLED_TOPICS as readonly string[]).includes(topic)) {
      if (!topics.includes(topic as HandledTopic)) topics.push(topic as HandledTopic);
    } else problem(`RECHARGE_WEBHOOK_TOPICS: "${t}" is not a topic orderbridge handles (${HANDLED_TOPICS.join(", ")})`);
  }
  if (topics.length === 0) problem(`RECHARGE_WEBHOOK_TOPICS must name at least one of ${HANDLED_TOPICS.join(", ")}`);
  return topics.length === 0 ? HANDLED_TOPICS : topics;
}

function parseTrustProxy(raw: string, problem: (message: string) => void): TrustProxy {
  const v = raw.toLowerCase();
  if (["false", "0", "off", "no"].includes(v)) return false;
  if (["true", "on", "yes"].includes(v)) return true;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = splitList(raw);
  for (const e of entries) {
    if (["loopback", "linklocal", "uniquelocal"].includes(e)) continue;
    try {
      parseAllowlist([e]);
    } catch {
      problem(`TRUST_PROXY: "${e}" is not an address, a CIDR range, a hop count, true/false, or one of loopback, linklocal, uniquelocal`);
    }
  }
  return entries;
}

/** How PLATFORM_HTTP_SECRET is read, never its value: a plain base64 key shows it is decoded. */
function describeSigningKey(secret: string): string {
  const k = parseSigningKey(secret);
  if (!k.ok) return "****";
  const form = { whsec: "whsec_<base64>", base64: "<base64>", raw: "raw:<text>" }[k.key.format];
  return `**** (${form}, ${k.key.bytes} bytes)`;
}
