#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { describeGeneratedSecret } from "../bootstrap.js";
import { describeConfig, loadConfig, misspeltSettingMessage, misspeltSettings } from "../config.js";
import { ConfigError } from "../errors.js";
import { createLogger } from "../logger.js";
import { loadPlatformModule } from "../platforms/index.js";
import { loadCatalog } from "../platforms/local/catalog.js";
import { createRateLimiter } from "../outbound/rate-limiter.js";
import { rechargeLimiterName } from "../recharge/api.js";
import { queueMissingWriteBacks } from "../recharge/catch-up.js";
import { createRechargeClient } from "../recharge/client.js";
import { createSweeper, type SweepReport } from "../recharge/sweep.js";
import { createWebhookSubscriptions } from "../recharge/webhooks.js";
import type { SubscriptionReport, SyncAction } from "../recharge/subscriptions.js";
import { openStore } from "../store/db.js";
import { describePrune, MIN_RETENTION_DAYS, prune } from "../store/retention.js";
import { createSchemaRegistry } from "../validation/schemas.js";
import { packageVersion } from "../version.js";
import { adminClient, CliError, collectPages, MAX_PAGE, query } from "./admin-client.js";
import { isoTimeMs } from "../validation/iso-time.js";
import { CHECK_NAMES, runCheck } from "./check.js";
import { colorWanted } from "./check/report.js";
import { BUILTIN_FIXTURES, runSend, type SendSource } from "./send.js";
import { adminToken, RECHARGE_PATH, serviceUrl, servicePath, SP_PATH, spSecret } from "./defaults.js";
import { details, table } from "./table.js";

/**
 * The `orderbridge` command. Exit codes: 0 success; 1 a check failed or the server refused;
 * 2 wrong usage; 69 the server could not be reached; 78 the configuration is invalid.
 */
type Obj = Record<string, unknown>;
const out = process.stdout;
const print = (s: string): void => void out.write(s.endsWith("\n") ? s : `${s}\n`);
const int =
  (name: string) =>
  (v: string): number => {
    if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number (got "${v}")`, 2);
    return Number(v);
  };

const program = new Command("orderbridge")
  .description("Subscription orders (Subscribe Pro, Recharge) into a commerce platform, exactly once.")
  .version(packageVersion(), "-V, --version", "print orderbridge's version")
  // Program options only before a command: `send --version 2021-01` is the payload version.
  .enablePositionalOptions()
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

const JSON_HELP = "print JSON instead of text (for scripts)";

program
  .command("serve")
  .description("Run the service (what npm start runs); configured by the environment, see docs/configuration.md")
  .action(async () => {
    await import("../main.js");
  });

program
  .command("migrate")
  .description("Apply pending database migrations (DATABASE_URL, or the SQLite file in DATA_DIR) and exit")
  .option("--json", JSON_HELP, false)
  .action(async (opts: Obj) => {
    // Migrating serves no callbacks, so it needs no callback secret (an init container has none).
    const config = loadConfig(process.env, { forServing: false });
    const store = await openStore(config.database, createLogger({ level: "error", format: "json", silent: true }));
    await store.close();
    if (opts["json"] === true) return print(JSON.stringify({ database: store.kind, applied: store.migrated }));
    print(store.migrated.length === 0 ? `${store.kind}: up to date` : `${store.kind}: applied ${store.migrated.join(", ")}`);
  });

program
  .command("prune")
  .description(
    "Prune what finished longer ago than RETENTION_DAYS from the configured database (DATABASE_URL, or the SQLite file in DATA_DIR) " +
      "and print what went, per table; the service does this every PRUNE_INTERVAL_MS by itself",
  )
  .option("--days <n>", `this retention instead of RETENTION_DAYS (at least ${MIN_RETENTION_DAYS})`, int("--days"))
  .option("--dry-run", "count what would go, change nothing", false)
  .option("--json", JSON_HELP, false)
  .action(async (opts: Obj) => {
    const config = loadConfig(process.env, { forServing: false });
    const days = typeof opts["days"] === "number" ? opts["days"] : config.retention.days;
    if (days === 0) {
      print(opts["json"] === true ? JSON.stringify({ retentionDays: 0, pruned: false }) : "RETENTION_DAYS=0: everything is kept; nothing pruned");
      return;
    }
    if (days < MIN_RETENTION_DAYS) throw new CliError(`--days must be at least ${MIN_RETENTION_DAYS}`, 2);
    const store = await openStore(config.database, createLogger({ level: "error", format: "json", silent: true }));
    try {
      const r = await prune(store.handle, { retentionDays: days, now: Date.now(), dryRun: opts["dryRun"] === true });
      if (opts["json"] === true) return print(JSON.stringify({ database: store.kind, retentionDays: days, ...describePrune(r) }));
      const [del, drop] = r.dryRun ? ["would be deleted", "would lose"] : ["deleted", "lost"];
      const n = (x: number): string => String(x).padStart(9);
      print(
        `${store.kind}: ${r.dryRun ? "dry run: nothing changed; " : ""}what finished before ${new Date(r.cutoff).toISOString()} (${days} days)\n` +
          `jobs         ${n(r.jobs.deleted)} ${del} (done ${r.jobs.done}, skipped ${r.jobs.skipped}; dead letters are kept)\n` +
          `inbox        ${n(r.rechargeInbox.deleted)} ${del} (Recharge events: ignored ${r.rechargeInbox.ignored}, processed ${r.rechargeInbox.processed} whose job is gone)\n` +
          `sp_callbacks ${n(r.spCallbacks.deleted)} ${del} (retryable answers: nothing was placed)\n` +
          `sp_callbacks ${n(r.spCallbacks.answersDropped)} ${drop} their stored answer (placed orders: key, body hash and order number stay)\n` +
          `job_attempts ${n(r.jobAttempts.deleted)} ${del} (the runs of pruned jobs; a dead letter keeps its history)\n` +
          `callback log ${n(r.callbackLog.deleted)} ${del} (Subscribe Pro callbacks received before then)\n` +
          `console      ${n(r.consoleActions.deleted)} ${del} (refused sign-ins: wrong admin tokens; operators' actions are kept)`,
      );
    } finally {
      await store.close();
    }
  });

const config = program.command("config").description("Inspect the configuration");
config
  .command("check")
  .description("Validate the environment and print the effective configuration, secrets masked")
  .option("--json", "print the effective configuration alone, as JSON", false)
  .action(async (opts: Obj) => {
    // Before validating: a misspelt variable is often why a required one is missing.
    for (const m of misspeltSettings(process.env)) process.stderr.write(`orderbridge: warning: ${misspeltSettingMessage(m)}\n`);
    const c = loadConfig(process.env, { isTty: false });
    // What the service reads at start besides the environment: the catalog (CATALOG_FILE) and an
    // adapter module (PLATFORM=./module.js), loaded and created as the service would, then closed.
    loadCatalog(c.catalogFile, createSchemaRegistry());
    if (c.platform.modulePath !== undefined) {
      const adapter = await loadPlatformModule(c.platform.modulePath, {
        env: process.env,
        log: createLogger({ level: "error", format: "json", silent: true }),
        timeoutMs: c.platform.timeoutMs,
      });
      await adapter.close?.();
    }
    const described = describeConfig(c);
    const generated = describeGeneratedSecret(c);
    if (generated !== undefined) (described["subscribePro"] as Record<string, unknown>)["hmacSecrets"] = generated;
    if (opts["json"] === true) return print(JSON.stringify(described));
    print(JSON.stringify(described, null, 2));
    print("configuration ok");
  });

program
  .command("send")
  .description("Send a correctly signed sample order (a built-in fixture or a JSON file) and print the answer")
  .addArgument(new Command().createArgument("<source>", "subscribe-pro or recharge").choices(["subscribe-pro", "recharge"]))
  .argument(
    "<fixture-or-file>",
    `a built-in sample (subscribe-pro: ${BUILTIN_FIXTURES["subscribe-pro"].join(", ")}; recharge: ${BUILTIN_FIXTURES.recharge.join(", ")}) or a JSON file sent byte for byte`,
  )
  .option(
    "--to <url>",
    `the URL to POST to (a callback URL, or https://…/webhooks/recharge; default: ORDERBRIDGE_URL or http://localhost:3000, with ${SP_PATH} or ${RECHARGE_PATH})`,
  )
  .option(
    "--secret <secret>",
    "signing secret (default: the first of SP_HMAC_SECRETS, else the service's generated secret in DATA_DIR; for recharge the first of RECHARGE_CLIENT_SECRETS)",
  )
  .option("--topic <topic>", "Recharge topic (default from the sample)")
  .addOption(new Option("--version <version>", "Recharge payload version of the built-in samples").choices(["2021-01", "2021-11"]))
  .option("--tamper", "change one byte after signing (the receiver must refuse it)", false)
  .option(
    "--duplicate <n>",
    "send the same bytes n times (a line per answer, each distinct body once, then a summary such as: 20 identical answers, 1 order)",
    int("--duplicate"),
    1,
  )
  .option("--concurrency <n>", "how many copies at once", int("--concurrency"), 1)
  .option("--out-of-order", "Recharge: order/updated first, then order/created", false)
  .option("--json", "one JSON line per request (every answer, duplicates too)", false)
  .action(async (source: string, what: string, opts: Obj) => {
    const r = await runSend({
      source: source as SendSource,
      what,
      to: typeof opts["to"] === "string" ? opts["to"] : servicePath(serviceUrl(undefined), source === "recharge" ? RECHARGE_PATH : SP_PATH),
      ...(typeof opts["secret"] === "string" ? { secret: opts["secret"] } : {}),
      ...(typeof opts["topic"] === "string" ? { topic: opts["topic"] } : {}),
      ...(opts["version"] === "2021-01" || opts["version"] === "2021-11" ? { version: opts["version"] } : {}),
      tamper: opts["tamper"] === true,
      duplicate: Number(opts["duplicate"]),
      concurrency: Number(opts["concurrency"]),
      outOfOrder: opts["outOfOrder"] === true,
      json: opts["json"] === true,
      out,
    });
    process.exitCode = r.exitCode;
  });

program
  .command("check")
  .description(
    "Conformance run against any Subscribe Pro order-callback handler: it places real orders through it (exit 1 on any failure, 69 when nothing answers, 2 when it refuses to start)",
  )
  .argument("[url]", `the handler's callback URL (default: ORDERBRIDGE_URL or http://localhost:3000, with ${SP_PATH})`)
  .option("--secret <secret>", "the shared secret it verifies Sp-Hmac with (default: the first of SP_HMAC_SECRETS, else the service's generated secret in DATA_DIR)")
  .option("--yes", "run the checks that place orders against a handler that is not on this machine (loopback)", false)
  .option("--safe", "run only the checks that place nothing (refusals, impossible orders)", false)
  .option(
    "--only <names>",
    `run only these checks (repeatable, or comma-separated): ${CHECK_NAMES.join(", ")}`,
    (v: string, acc: string[]) => [
      ...acc,
      ...v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ],
    [] as string[],
  )
  .option("--json", "one JSON line per result as it finishes, after a plan line and before a summary line", false)
  .option("--junit <file>", "also write JUnit XML to this file")
  .option("--timeout <ms>", "per request", int("--timeout"), 30_000)
  .option("--skus <known>", "two SKUs the handler's platform sells, comma-separated", "RUBY-RED,EARL-GREY")
  .option("--no-progress", "no progress bar")
  .action(async (url: string | undefined, opts: Obj) => {
    const [a, b] = String(opts["skus"])
      .split(",")
      .map((s) => s.trim());
    if (a === undefined || b === undefined || a === "" || b === "") throw new CliError("--skus needs two SKUs, comma-separated", 2);
    const secret = typeof opts["secret"] === "string" && opts["secret"] !== "" ? opts["secret"] : spSecret();
    if (secret === undefined) {
      throw new CliError("No shared secret: pass --secret or set SP_HMAC_SECRETS to the secret the handler verifies Sp-Hmac with.", 2);
    }
    const r = await runCheck({
      url: url ?? servicePath(serviceUrl(undefined), SP_PATH),
      secret,
      timeoutMs: Number(opts["timeout"]),
      ...(typeof opts["junit"] === "string" ? { junit: opts["junit"] } : {}),
      out,
      json: opts["json"] === true,
      color: colorWanted(out, process.env),
      width: out.isTTY ? out.columns : undefined,
      only: opts["only"] as string[],
      safe: opts["safe"] === true,
      yes: opts["yes"] === true,
      progress: opts["progress"] !== false && process.stderr.isTTY === true,
      skus: { known: [a, b] },
    });
    if (r.unreachable) process.exitCode = 69;
    else if (r.failed > 0) process.exitCode = 1;
  });

/** --url, --token and --json for the admin API commands. */
function withServer(cmd: Command, json = JSON_HELP): Command {
  return cmd
    .option("--url <url>", "orderbridge's base URL (default: ORDERBRIDGE_URL or http://localhost:3000)")
    .option("--token <token>", "admin token (default: ADMIN_TOKEN)")
    .option("--json", json, false);
}
const server = (opts: Obj) => adminClient(serviceUrl(opts["url"]), adminToken(opts["token"]));

/** --limit and --all of a list: pages of up to 200 are followed through the API's cursor. */
function withPaging(cmd: Command): Command {
  return cmd
    .option("--limit <n>", `how many, newest first (more than ${MAX_PAGE} are fetched page by page)`, int("--limit"))
    .option("--all", "every one there is, page by page", false);
}
function pageLimit(opts: Obj): number | undefined {
  if (opts["all"] === true && opts["limit"] !== undefined) throw new CliError("--all and --limit exclude each other", 2);
  if (opts["all"] === true) return undefined;
  return typeof opts["limit"] === "number" ? opts["limit"] : 50;
}

/** After a table: how to get the next page, when there is one. */
const printNextPage = (nextCursor: string | null | undefined): void => {
  if (typeof nextCursor === "string") print(`more: add --cursor ${nextCursor}`);
};

/** One admin list, paged as asked (--limit, --all, --cursor), printed as JSON or as a table with the next page's cursor. */
async function printList(opts: Obj, o: { path: string; params: Record<string, unknown>; field: string; headers: string[]; row: (item: Obj) => unknown[] }): Promise<void> {
  const { items, next } = await collectPages(server(opts), {
    path: o.path,
    params: o.params,
    itemsField: o.field,
    cursorField: "nextCursor",
    cursorParam: "cursor",
    start: opts["cursor"] as string | undefined,
    limit: pageLimit(opts),
  });
  const list = items as Obj[];
  if (opts["json"] === true) return print(JSON.stringify({ [o.field]: list, nextCursor: next }));
  print(table(o.headers, list.map(o.row)));
  printNextPage(next);
}

const callbacks = program.command("callbacks").description("The Subscribe Pro callback log: every order callback as received and answered");
withPaging(withServer(callbacks.command("list").description("Newest first"), "print JSON ({ callbacks, nextCursor }) instead of a table"))
  .option("--status <status>", "an HTTP status (409) or a class (2xx, 4xx, 5xx)")
  .option("--search <text>", "a sales order token, an order number or a customer email")
  .option("--since <time>", "received since: an ISO 8601 time or a span before now (90m, 72h, 30d)")
  .option("--refused", "only the sample of requests refused before their signature or address was accepted", false)
  .option("--cursor <cursor>", "start at this page: the cursor a list before printed (nextCursor)")
  .action(async (opts: Obj) => {
    const reason = (c: Obj): unknown => {
      const r = c["reasons"] as { errorMessage?: string; errorItems?: { message?: string }[] } | null;
      return r?.errorMessage ?? r?.errorItems?.[0]?.message ?? (c["replayed"] === true ? "(stored answer sent again)" : null);
    };
    await printList(opts, {
      path: "/admin/callbacks",
      params: {
        status: opts["status"],
        q: opts["search"],
        from: opts["since"] === undefined ? undefined : new Date(parseSince(String(opts["since"]))).toISOString(),
        authenticated: opts["refused"] === true ? "false" : undefined,
      },
      field: "callbacks",
      headers: ["id", "received", "status", "token", "order", "ms", "reason"],
      row: (c) => [c["id"], c["receivedAt"], c["status"], c["salesOrderToken"], c["orderNumber"], c["durationMs"], reason(c)],
    });
  });
withServer(callbacks.command("show").description("One callback, with its masked body, its order and the other callbacks of its token").argument("<id>")).action(
  async (id: string, opts: Obj) => {
    const c = (await server(opts).get(`/admin/callbacks/${encodeURIComponent(id)}`)) as Obj;
    print(opts["json"] === true ? JSON.stringify(c) : details(c, { sameToken: ["id", "receivedAt", "status", "orderNumber", "replayed"] }));
  },
);

const events = program.command("events").description("The event log: Recharge inbox events and write-back jobs");
withPaging(withServer(events.command("list").description("Newest first"), "print JSON ({ events, nextCursor }) instead of a table"))
  .addOption(new Option("--state <state>").choices(["pending", "running", "done", "skipped", "ignored", "dead"]))
  .option("--kind <kind>", "e.g. recharge.webhook, recharge.order_writeback")
  .option("--resource <id>", "a Recharge order id")
  .option("--cursor <cursor>", "start at this page: the cursor a list before printed (nextCursor)")
  .action(async (opts: Obj) => {
    await printList(opts, {
      path: "/admin/events",
      params: { state: opts["state"], kind: opts["kind"], resourceId: opts["resource"] },
      field: "events",
      headers: ["id", "kind", "topic", "state", "attempts", "resource", "created", "outcome / last error"],
      row: (e) => [
        e["id"],
        e["kind"],
        e["topic"],
        e["state"],
        `${String(e["attempts"])}/${String(e["maxAttempts"])}`,
        e["resourceId"],
        e["createdAt"],
        e["lastError"] ?? e["outcome"],
      ],
    });
  });
withServer(events.command("show").description("One event or job, with its body, its payload and every attempt").argument("<id>")).action(async (id: string, opts: Obj) => {
  const e = (await server(opts).get(`/admin/events/${encodeURIComponent(id)}`)) as Obj;
  print(opts["json"] === true ? JSON.stringify(e) : details(e, { attemptHistory: ["attempt", "outcome", "remoteStatus", "startedAt", "durationMs", "nextAttemptAt", "detail"] }));
});
withServer(events.command("replay").description("Run an event or job again from the start").argument("<id>")).action(async (id: string, opts: Obj) => {
  const e = (await server(opts).post(`/admin/events/${encodeURIComponent(id)}/replay`)) as Obj;
  print(opts["json"] === true ? JSON.stringify(e) : `${String(e["id"])} is ${String(e["state"])} again`);
});
withServer(events.command("replay-matching").description("Replay every event or job a filter matches (not running), at most 1000 a run"))
  .addOption(new Option("--state <state>").choices(["pending", "done", "skipped", "dead"]))
  .option("--kind <kind>", "e.g. recharge.order_writeback")
  .option("--resource <id>", "a Recharge order id")
  .option("--dry-run", "only count what matches", false)
  .action(async (opts: Obj) => {
    const r = (await server(opts).post(
      `/admin/events/replay${query({ state: opts["state"], kind: opts["kind"], resourceId: opts["resource"], dryRun: opts["dryRun"] === true ? "true" : undefined })}`,
    )) as Obj;
    if (opts["json"] === true) return print(JSON.stringify(r));
    print(
      opts["dryRun"] === true
        ? `${String(r["matched"])} match`
        : `${String(r["replayed"])} of ${String(r["matched"])} replayed${r["more"] === true ? " (more match: run it again)" : ""}`,
    );
  });
withServer(events.command("resolve").description("Mark a dead letter resolved without replaying it").argument("<id>"))
  .option("--note <text>", "why (kept in its outcome)")
  .action(async (id: string, opts: Obj) => {
    const e = (await server(opts).post(`/admin/events/${encodeURIComponent(id)}/resolve${query({ note: opts["note"] })}`)) as Obj;
    print(opts["json"] === true ? JSON.stringify(e) : `${String(e["id"])} is ${String(e["state"])}: ${String(e["outcome"])}`);
  });

const orders = program.command("orders").description("The local platform's orders");
withPaging(withServer(orders.command("list").description("Newest first"), "print JSON ({ orders, nextCursor }) instead of a table"))
  .option("--sales-order-token <token>")
  .addOption(new Option("--source <source>").choices(["subscribe-pro", "recharge"]))
  .option("--source-order-id <id>", "e.g. a Recharge order id")
  .option("--cursor <cursor>", "start at this page: the cursor a list before printed (nextCursor)")
  .action(async (opts: Obj) => {
    await printList(opts, {
      path: "/admin/orders",
      params: { salesOrderToken: opts["salesOrderToken"], source: opts["source"], sourceOrderId: opts["sourceOrderId"] },
      field: "orders",
      headers: ["order", "source", "source order", "created", "items", "total"],
      row: (o) => [o["orderNumber"], o["source"], o["sourceOrderId"], o["createdAt"], (o["items"] as unknown[]).length, `${String(o["total"])} ${String(o["currency"])}`],
    });
  });
withServer(orders.command("show").description("One order with its items").argument("<orderNumber>")).action(async (n: string, opts: Obj) => {
  const o = (await server(opts).get(`/admin/orders/${encodeURIComponent(n)}`)) as Obj;
  print(opts["json"] === true ? JSON.stringify(o) : details(o, { items: ["platformOrderItemId", "sku", "name", "quantity", "unitPrice", "taxTotal", "lineTotal"] }));
});

/** `--since`: an ISO 8601 date or time (`2026-11-30`, `2026-11-30T12:00:00Z`), or a span before now (`90m`, `72h`, `30d`). */
function parseSince(v: string, now = Date.now()): number {
  const span = /^(\d+)\s*(m|h|d)$/i.exec(v.trim());
  if (span !== null) return now - Number(span[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[(span[2] as string).toLowerCase() as "m" | "h" | "d"];
  const at = isoTimeMs(v.trim());
  if (at === undefined) throw new CliError(`--since must be an ISO 8601 date or time (2026-11-30, 2026-11-30T12:00:00Z) or a span such as 72h or 30d (got "${v}")`, 2);
  return at;
}

const recharge = program.command("recharge").description("Recharge: work on the orders orderbridge placed from Recharge");
recharge
  .command("writeback")
  .description("Queue the write-backs that Recharge orders placed since a time never got (placed with RECHARGE_WRITEBACK=off); idempotent")
  .requiredOption("--since <time>", "an ISO 8601 date or time, or a span before now such as 72h or 30d")
  .option("--dry-run", "count what would be queued, queue nothing", false)
  .option("--json", JSON_HELP, false)
  .action(async (opts: Obj) => {
    const since = parseSince(String(opts["since"]));
    const c = loadConfig(process.env, { forServing: false });
    if (c.recharge.apiToken === undefined) {
      throw new ConfigError(
        "write-back is off here (RECHARGE_WRITEBACK=off, or no RECHARGE_API_TOKEN): queued write-backs would fail. Turn write-back on for the service, then run this with the service's environment",
      );
    }
    const store = await openStore(c.database, createLogger({ level: "error", format: "json", silent: true }));
    try {
      const r = await queueMissingWriteBacks(store.handle, { since, maxAttempts: c.jobs.maxAttempts, dryRun: opts["dryRun"] === true, now: Date.now() });
      if (opts["json"] === true) return print(JSON.stringify({ since: new Date(since).toISOString(), dryRun: opts["dryRun"] === true, ...r }));
      const existing = Object.entries(r.existing)
        .map(([state, n]) => `${n} ${state}`)
        .join(", ");
      print(
        `${r.orders} Recharge order(s) placed since ${new Date(since).toISOString()}; ${opts["dryRun"] === true ? "would queue" : "queued"} ${r.queued} write-back(s)` +
          (existing === "" ? "" : `; already there: ${existing}`) +
          (r.existing["dead"] !== undefined ? " (replay dead ones with `orderbridge events replay <id>`)" : ""),
      );
      if (r.queued > 0 && opts["dryRun"] !== true) print("A running service sends them within WORKER_POLL_MS, under the shared rate limit.");
    } finally {
      await store.close();
    }
  });

/**
 * The service's Recharge client, on the configured database (its rate limit is the one the service
 * and every instance draw from), for a command; closed after `fn`.
 */
async function withRechargeApi<T>(
  fn: (api: { c: ReturnType<typeof loadConfig>; client: ReturnType<typeof createRechargeClient>; store: Awaited<ReturnType<typeof openStore>> }) => Promise<T>,
): Promise<T> {
  const c = loadConfig(process.env, { forServing: false });
  const token = c.recharge.apiToken;
  if (token === undefined)
    throw new ConfigError(
      "RECHARGE_API_TOKEN is not set (or RECHARGE_WRITEBACK=off): this command calls Recharge's API with the service's token. Run it with the service's environment",
    );
  const store = await openStore(c.database, createLogger({ level: "error", format: "json", silent: true }));
  try {
    const limiter = createRateLimiter(store.handle, rechargeLimiterName(token), c.recharge.rateLimit);
    const client = createRechargeClient({ baseUrl: c.recharge.apiUrl, token, timeoutMs: c.recharge.timeoutMs, maxWaitMs: 1000, limiter });
    return await fn({ c, client, store });
  } finally {
    await store.close();
  }
}

function webhookSubscriptionsFor(c: ReturnType<typeof loadConfig>, client: ReturnType<typeof createRechargeClient>) {
  if (c.publicUrl === undefined) {
    throw new ConfigError("PUBLIC_URL is not set: it is the base URL Recharge's webhooks are registered at (https://orders.example.com). Set it as the service has it");
  }
  return createWebhookSubscriptions({ client, wanted: { publicUrl: c.publicUrl, topics: c.recharge.subscriptions.topics, version: c.recharge.subscriptions.version } });
}

function subscriptionTable(r: SubscriptionReport): string {
  const rows = r.topics.map((t) => [
    t.topic,
    t.state,
    t.webhook?.id ?? "",
    t.webhook?.version ?? (t.webhook === undefined ? "" : "(store default)"),
    t.webhook?.address ?? "",
    t.problem ?? "",
  ]);
  return `${table(["topic", "state", "webhook", "version", "address", "problem"], rows)}\n${r.others} webhook(s) of other apps left alone`;
}
const describeAction = (a: SyncAction): string =>
  a.kind === "create"
    ? `create ${a.topic} at ${a.address} (version ${a.version})`
    : a.kind === "update"
      ? `correct webhook ${a.id} (${a.topic}): ${a.was.address} ${a.was.version ?? "(store default)"} → ${a.address} ${a.version}`
      : `delete webhook ${a.id} (${a.topic} at ${a.address}): ${a.reason}`;

const webhooks = recharge.command("webhooks").description("The store's Recharge webhooks against what orderbridge needs (the topics, an explicit version, at PUBLIC_URL)");
webhooks
  .command("status")
  .description("List the store's webhooks (GET /webhooks) and compare them with what orderbridge needs; exit 1 when one is missing or wrong")
  .option("--json", "print JSON", false)
  .action(async (opts: Obj) => {
    await withRechargeApi(async ({ c, client }) => {
      const r = await webhookSubscriptionsFor(c, client).status();
      print(
        opts["json"] === true
          ? JSON.stringify(r)
          : `${subscriptionTable(r)}\n${r.ok ? "ok" : `not ok: run \`orderbridge recharge webhooks sync\` to ${r.actions.map(describeAction).join("; ")}`}`,
      );
      if (!r.ok) process.exitCode = 1;
    });
  });
webhooks
  .command("sync")
  .description("Create the missing webhooks, correct a wrong version or address, delete orderbridge's duplicates; never touches other apps' webhooks. Idempotent")
  .option("--dry-run", "say what would change, change nothing", false)
  .option("--json", "print JSON", false)
  .action(async (opts: Obj) => {
    await withRechargeApi(async ({ c, client }) => {
      const subs = webhookSubscriptionsFor(c, client);
      if (opts["dryRun"] === true) {
        const r = await subs.status();
        print(
          opts["json"] === true
            ? JSON.stringify({ dryRun: true, ...r })
            : r.actions.length === 0
              ? "nothing to change"
              : r.actions.map((a) => `would ${describeAction(a)}`).join("\n"),
        );
        return;
      }
      const r = await subs.sync();
      if (opts["json"] === true) print(JSON.stringify(r));
      else {
        for (const a of r.applied) print(`${a.ok ? "done" : "FAILED"}: ${describeAction(a.action)}${a.ok ? "" : ` (${a.error ?? ""})`}`);
        print(`${r.applied.length === 0 ? "nothing to change\n" : ""}${subscriptionTable(r.after)}`);
      }
      if (!r.after.ok) process.exitCode = 1;
    });
  });

recharge
  .command("sweep")
  .description(
    "List the successful Recharge orders updated since a time (GET /orders) and feed each one orderbridge has not placed into the inbox, as the service's periodic sweep does; placed ones without an external id in Recharge get their write-back. The service's sweep cursor is left as it is",
  )
  .requiredOption("--since <time>", "an ISO 8601 date or time, or a span before now such as 72h or 30d")
  .option("--dry-run", "say what each order needs, change nothing", false)
  .option("--json", "print JSON", false)
  .action(async (opts: Obj) => {
    const since = parseSince(String(opts["since"]));
    await withRechargeApi(async ({ c, client, store }) => {
      const rc = c.recharge;
      const sweeper = createSweeper({
        db: store.handle,
        client,
        version: rc.apiVersion,
        validateOrder: createSchemaRegistry().validator("recharge/order-webhook"),
        maxAttempts: c.jobs.maxAttempts,
        lookbackMs: rc.sweep.lookbackMs,
        rateShare: rc.sweep.rateShare,
        rate: rc.rateLimit,
        cursorParam: rc.sweep.cursorParam,
        holder: `cli:${process.pid}`,
        clock: Date.now,
        log: createLogger({ level: "error", format: "json", silent: true }),
        onEnqueued: () => undefined,
      });
      const r: SweepReport = await sweeper.sweepWindow({ from: since, until: Date.now(), dryRun: opts["dryRun"] === true });
      if (opts["json"] === true) return print(JSON.stringify(r));
      const found = r.orders.filter((o) => o.action !== "none");
      if (found.length > 0)
        print(
          table(
            ["recharge order", "needs", "why", "jobs"],
            found.map((o) => [o.id, o.action, o.reason, (o.jobs ?? []).join(", ")]),
          ),
        );
      const verb = r.dryRun ? "would " : "";
      print(
        `${r.seen} successful Recharge order(s) updated ${r.from} – ${r.until} (${r.pages} page(s)): ${verb}place ${r.placed} missed; ` +
          `${verb}queue ${r.writeBacksQueued} write-back(s), ${verb}replay ${r.writeBacksReplayed} dead one(s); ${r.none} need nothing; ${r.invalid} invalid`,
      );
      if (!r.dryRun && (r.placed > 0 || r.writeBacksQueued > 0 || r.writeBacksReplayed > 0)) print("A running service places and writes them back within WORKER_POLL_MS.");
      if (r.invalid > 0) process.exitCode = 1;
    });
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are not errors; everything else commander refuses is a usage error.
    process.exitCode = e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version" ? 0 : 2;
  } else if (e instanceof ConfigError) {
    process.stderr.write(`orderbridge: ${e.message}\n`);
    process.exitCode = 78;
  } else if (e instanceof CliError) {
    process.stderr.write(`orderbridge: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`orderbridge: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
