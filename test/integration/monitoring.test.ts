import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import YAML from "yaml";
import { startService, type TestService } from "../helpers/service.js";

const ALERTS = fileURLToPath(new URL("../../deploy/prometheus/alerts.yml", import.meta.url));
const DASHBOARD = fileURLToPath(new URL("../../deploy/grafana/orderbridge.json", import.meta.url));
/** Series Prometheus makes itself for every target, not the service. */
const PROMETHEUS_OWN = new Set(["up"]);

type Obj = Record<string, unknown>;
interface Rule {
  alert: string;
  expr: string;
}
const rules = (YAML.parse(fs.readFileSync(ALERTS, "utf8"), { strict: true, uniqueKeys: true }) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as Obj;

/** Every PromQL expression of the dashboard: its panels' queries and its variables' label_values(metric, …). */
function dashboardExprs(): string[] {
  const exprs = (dashboard["panels"] as { targets: { expr: string }[] }[]).flatMap((p) => p.targets.map((t) => t.expr));
  for (const v of (dashboard["templating"] as { list: { query: { query: string } }[] }).list) {
    const m = /^label_values\((.*),\s*\w+\)$/.exec(v.query.query);
    assert.ok(m !== null, `variable query ${v.query.query}`);
    exprs.push(m[1] as string);
  }
  return exprs;
}

/** The metric names a PromQL expression selects (not functions, keywords, label names or values). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values, regexes
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // ranges
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ""); // label lists
  const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"]);
  return [...bare.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)].map((m) => m[1] as string).filter((n) => !keywords.has(n));
}

/** The sample names a Prometheus text exposes, from its TYPE lines (a histogram's _bucket, _sum, _count). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [name, type] = [m[1] as string, m[2] as string];
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

describe("sample alert rules and Grafana dashboard", () => {
  let t: TestService;
  let exposed: Set<string>;
  before(async () => {
    t = await startService("sqlite");
    const res = await request(t.app).get("/metrics");
    assert.equal(res.status, 200);
    exposed = exposedNames(res.text);
  });
  after(() => t.stop());

  it("name only metrics the running service exposes", () => {
    const used = new Map<string, string>();
    for (const r of rules) for (const n of metricNames(r.expr)) used.set(n, `alert ${r.alert}`);
    for (const e of dashboardExprs()) for (const n of metricNames(e)) used.set(n, "the dashboard");
    assert.ok(used.size >= 12, [...used.keys()].join(", "));
    for (const [name, where] of used) assert.ok(exposed.has(name) || PROMETHEUS_OWN.has(name), `${where} uses ${name}, which GET /metrics does not expose`);
  });

  it("alert on dead letters, the write-back backlog, callback 5xx, silent webhooks and an instance down", () => {
    const byMetric = (name: string): string[] => rules.filter((r) => metricNames(r.expr).includes(name)).map((r) => r.alert);
    assert.ok(
      rules.some((r) => /state="dead"/.test(r.expr) && metricNames(r.expr).includes("orderbridge_queue_jobs")),
      "dead letters",
    );
    assert.ok(
      rules.some((r) => /writeback/.test(r.expr) && metricNames(r.expr).includes("orderbridge_queue_oldest_due_age_seconds")),
      "write-back backlog age",
    );
    assert.ok(
      rules.some((r) => /outcome="5xx"/.test(r.expr)),
      "callback 5xx rate",
    );
    assert.ok(byMetric("orderbridge_recharge_webhooks_total").length > 0, "no webhooks for a long time");
    assert.ok(byMetric("up").length > 0, "instance down");
  });

  const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  const missing =
    promtool.error !== undefined
      ? `promtool is not installed (${(promtool.error as NodeJS.ErrnoException).code ?? promtool.error.message}); install Prometheus's promtool to check the rules`
      : false;
  it("pass promtool check rules", { skip: missing }, () => {
    const r = spawnSync("promtool", ["check", "rules", ALERTS], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});
