import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import ipaddr from "ipaddr.js";
import { maskUrl } from "../config.js";
import { createSchemaRegistry } from "../validation/schemas.js";
import { CliError } from "./admin-client.js";
import { CHECKS, type Check, type Ctx, type Outcome } from "./check/checks.js";
import { errorText } from "./check/client.js";
import { describePlan, jsonReporter, junitXml, progressBar, textReporter, type CheckResult, type Plan } from "./check/report.js";

/**
 * `orderbridge check URL --secret S`: a conformance check of any Subscribe Pro order-callback
 * handler over HTTP (shared/spec/subscribe-pro-order-callback.md §2–§5, README "The order callback").
 * It places real orders on the handler's platform: it says so before it starts, and a target that
 * is not this machine needs --yes (or --safe: only the checks that place nothing).
 */

export { CHECK_NAMES } from "./check/checks.js";
export type { CheckResult } from "./check/report.js";

export interface CheckOptions {
  url: string; // the handler's callback URL
  secret: string; // the shared secret to sign with
  timeoutMs: number; // per request (default used by the owner: 30000)
  junit?: string; // write JUnit XML to this file path
  out: NodeJS.WritableStream; // where the results go (stdout): the table, or JSON lines
  /** Where the notice of what the run will do goes, before any request (default process.stderr). */
  notice?: NodeJS.WritableStream;
  progress: boolean; // draw a one-line progress bar on `progressOut` while running (only when true)
  progressOut?: NodeJS.WritableStream; // default process.stderr
  /** SKUs the handler's platform sells (default ["RUBY-RED", "EARL-GREY"]) and one it does not know (default "NO-SUCH-SKU-<random>"). */
  skus?: { known: [string, string]; unknown?: string };
  /** JSON lines instead of the table. */
  json?: boolean;
  /** ANSI colours in the table (the caller decides: a TTY, and NO_COLOR unset). */
  color?: boolean;
  /** Terminal columns the table and the progress bar fit into; undefined: no wrapping. */
  width?: number | undefined;
  /** Run only these checks (names from CHECK_NAMES). */
  only?: readonly string[];
  /** Run only the checks that place nothing. */
  safe?: boolean;
  /** Run checks that place orders against a target that is not loopback. */
  yes?: boolean;
}

/** `localhost`, `*.localhost` and loopback addresses (127.0.0.0/8, ::1, ::ffff:127.x.y.z), read from the URL alone. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (!ipaddr.isValid(h)) return false;
  let addr = ipaddr.parse(h);
  if (addr instanceof ipaddr.IPv6 && addr.isIPv4MappedAddress()) addr = addr.toIPv4Address();
  return addr.range() === "loopback";
}

/**
 * Which checks run and what they will place; refuses (CliError, exit 2) options that cannot work
 * and a run that would place orders on another machine without --yes. Sends nothing.
 */
export function planCheck(o: Pick<CheckOptions, "url" | "timeoutMs" | "skus" | "only" | "safe" | "yes">): { url: URL; checks: Check[]; plan: Plan } {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new CliError(`not a URL: ${o.url}`, 2);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError(`not an http(s) URL: ${o.url}`, 2);
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) throw new CliError(`the timeout must be a positive number of milliseconds, not ${o.timeoutMs}`, 2);

  const known = o.skus?.known ?? ["RUBY-RED", "EARL-GREY"];
  const safe = o.safe === true;
  let checks: Check[] = [...CHECKS];
  if (o.only !== undefined && o.only.length > 0) {
    const wanted = new Set(o.only);
    const unknown = [...wanted].filter((n) => !CHECKS.some((c) => c.name === n));
    if (unknown.length > 0) throw new CliError(`no check named ${unknown.join(", ")}; the checks are ${CHECKS.map((c) => c.name).join(", ")}`, 2);
    checks = checks.filter((c) => wanted.has(c.name));
    const unsafe = checks.filter((c) => !c.safe).map((c) => c.name);
    if (safe && unsafe.length > 0) throw new CliError(`--safe runs only checks that place nothing, and ${unsafe.join(", ")} can place orders`, 2);
  } else if (safe) {
    checks = checks.filter((c) => c.safe);
  }

  // What may place an order: a check that does with a correct handler, or that a broken one could turn into one.
  const risky = safe ? [] : checks.filter((c) => c.places.orders > 0 || !c.safe).map((c) => c.name);
  const units: Record<string, number> = {};
  for (const c of checks) {
    if (safe) continue;
    c.places.units.forEach((u, i) => {
      const sku = known[i] as string;
      units[sku] = (units[sku] ?? 0) + u;
    });
  }
  const plan: Plan = {
    url: maskUrl(url.toString()),
    checks: checks.map((c) => c.name),
    safe,
    timeoutMs: o.timeoutMs,
    orders: safe ? 0 : checks.reduce((n, c) => n + c.places.orders, 0),
    units,
    unknownSku: o.skus?.unknown ?? `NO-SUCH-SKU-${randomBytes(4).toString("hex").toUpperCase()}`,
  };
  if (risky.length > 0 && o.yes !== true && !isLoopbackHost(url.hostname)) {
    throw new CliError(
      `${url.hostname} is not this machine, and ${risky.join(", ")} place${risky.length === 1 ? "s" : ""} real orders through the handler ` +
        `(${plan.orders} order${plan.orders === 1 ? "" : "s"} when it gets them right; more when it does not). ` +
        "Pass --yes to run them against it, or --safe to run only the checks that place nothing.",
      2,
    );
  }
  return { url, checks, plan };
}

/**
 * Runs the checks against `o.url`, all at once (each check's own requests in turn): a handler that
 * hangs fails the run in about one timeout. Says first what the run will do (`o.notice`), then
 * writes each result to `o.out` as it finishes, and the summary (JUnit XML to `o.junit` at the
 * end). A check never throws: a network error or timeout is a failed check. Throws CliError for
 * options that cannot work or are refused (planCheck), or when the JUnit file cannot be written.
 */
export async function runCheck(o: CheckOptions): Promise<{ results: CheckResult[]; passed: number; failed: number; unreachable: boolean }> {
  const { url, checks, plan } = planCheck(o);
  const schemas = createSchemaRegistry();
  const ctx: Ctx = {
    url,
    secret: o.secret,
    timeoutMs: o.timeoutMs,
    known: o.skus?.known ?? ["RUBY-RED", "EARL-GREY"],
    unknown: plan.unknownSku,
    safe: plan.safe,
    schema: {
      placed: schemas.validator<unknown>("subscribe-pro/order-callback-response.lenient#/$defs/placed"),
      notPlaced: schemas.validator<unknown>("subscribe-pro/order-callback-response.lenient#/$defs/notPlaced"),
    },
  };

  (o.notice ?? process.stderr).write(describePlan(plan));
  const reporter = o.json === true ? jsonReporter(o.out) : textReporter({ out: o.out, color: o.color === true, width: o.width });
  const bar = o.progress ? progressBar(o.progressOut ?? process.stderr, o.width) : undefined;
  reporter.start(plan);

  const finished = new Map<string, CheckResult>();
  const waiting = new Set(plan.checks);
  let unanswered = 0; // checks that got no HTTP answer at all (refused, unresolvable, timed out)
  const started = performance.now();
  bar?.draw(0, checks.length, [...waiting]);
  await Promise.all(
    checks.map(async (check) => {
      const t0 = performance.now();
      let outcome: Outcome;
      try {
        outcome = await check.run(ctx);
      } catch (e) {
        outcome = { ok: false, reason: `request failed: ${errorText(e)}` };
        unanswered++;
      }
      const result = { name: check.name, ok: outcome.ok, reason: outcome.reason, ms: Math.round(performance.now() - t0) };
      finished.set(check.name, result);
      waiting.delete(check.name);
      bar?.clear();
      reporter.result(result);
      bar?.draw(finished.size, checks.length, [...waiting]);
    }),
  );
  bar?.clear();
  const totalMs = performance.now() - started;

  // Reported as they finished; returned (and in JUnit) in the checks' own order.
  const results = checks.map((c) => finished.get(c.name) as CheckResult);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  const unreachable = unanswered === results.length;
  reporter.finish({ passed, failed, ms: Math.round(totalMs), unreachable });
  if (o.junit !== undefined) {
    fs.mkdirSync(path.dirname(path.resolve(o.junit)), { recursive: true });
    fs.writeFileSync(o.junit, junitXml(results, totalMs));
  }
  return { results, passed, failed, unreachable };
}
