import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { describe, it } from "node:test";
import express from "express";
import ipaddr from "ipaddr.js";
import YAML from "yaml";
import { loadConfig, misspeltSettings } from "../../src/config.js";
import { settingsOf } from "../../src/config/settings.js";
import { SECTIONS } from "../../src/config/spec.js";

// `docker compose` cannot run here: compose.yaml is read as Compose reads it (YAML, then
// ${VAR:?…} / ${VAR:-…} interpolation from .env, the image's ENV under env_file under environment)
// and each instance's environment goes through orderbridge's own configuration loader.
const read = (file: string): string => fs.readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: unknown;
  env_file?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: unknown[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  depends_on?: Record<string, { condition: string }> | string[];
  stop_grace_period?: string;
  configs?: { source: string; target: string }[];
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string; ip_range?: string }[] } } | null>;
  configs: Record<string, { content: string }>;
}

/** Compose's interpolation of one value: $$, ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR. */
function interpolate(value: string, vars: Env): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced, op, arg, bare) => {
    if (m === "$$") return "$";
    const name = (braced ?? bare) as string;
    const v = vars[name];
    if (op === ":?" && (v === undefined || v === "")) throw new Error(`required variable ${name} is missing a value: ${arg as string}`);
    if (op === ":-" && (v === undefined || v === "")) return arg as string;
    return v ?? "";
  });
}
function interpolateAll<T>(node: T, vars: Env): T {
  if (typeof node === "string") return interpolate(node, vars) as T;
  if (Array.isArray(node)) return node.map((n) => interpolateAll(n, vars)) as T;
  if (node !== null && typeof node === "object") {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateAll(v, vars)])) as T;
  }
  return node;
}

/** An env file as Compose reads one: KEY=VALUE lines, # comments, optional quotes. */
function parseEnvFile(text: string): Env {
  const env: Env = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m !== null) env[m[1] as string] = (m[2] as string).trim().replace(/^(["'])(.*)\1$/, "$2");
  }
  return env;
}

/** The runtime stage's ENV of the Dockerfile: what every container starts with. */
const unquote = (v: string): string => (/^".*"$/.test(v) ? v.slice(1, -1) : v);
function imageEnv(): Env {
  const dockerfile = read("Dockerfile");
  const runtime = dockerfile.split(/^FROM /m).pop() ?? "";
  // The build arguments' defaults (ARG NAME="default"), as `docker build` without --build-arg sets them.
  const args = new Map([...runtime.matchAll(/^ARG ([A-Z_][A-Z0-9_]*)(?:=(.*))?$/gm)].map((m) => [m[1] as string, unquote(m[2] ?? "")]));
  const env: Env = {};
  for (const m of runtime.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const kv of (m[1] as string).matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) {
      env[kv[1] as string] = unquote(kv[2] as string).replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => args.get(name) ?? "");
    }
  }
  return env;
}

/** Every setting orderbridge reads: the names of its configuration spec. */
const KNOWN = new Set(SECTIONS.flatMap((section) => settingsOf(section.spec).map((setting) => setting.name)));

const composeText = read("compose.yaml");
const example = read("compose.env.example");
// The example with every secret filled in as it says (openssl rand -hex 24).
const dotenv: Env = Object.fromEntries(Object.entries(parseEnvFile(example)).map(([k, v]) => [k, v === "" ? randomBytes(24).toString("hex") : v]));
const raw = YAML.parse(composeText) as Compose;
const compose = interpolateAll(raw, dotenv);
const instances = Object.entries(compose.services).filter(([, s]) => s.image === compose.services["orderbridge-1"]?.image);
const proxyName = "proxy";
const proxy = compose.services[proxyName] as Service;
// The Caddyfile's directives, its comments left out.
const caddyfile = (compose.configs["caddyfile"]?.content ?? "").replace(/(^|\s)#.*$/gm, "$1");

const listOf = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const networksOf = (s: Service): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
function environmentOf(s: Service): Env {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? "" : String(v)]));
}
/** A container's environment: the image's ENV, then env_file, then environment, as Compose layers them. */
function containerEnv(s: Service, extra: Env = {}): Env {
  const files = listOf(s.env_file).map((f) => {
    assert.equal(f, ".env", "the instances read the .env that compose.env.example describes");
    return { ...dotenv, ...extra };
  });
  return Object.assign({}, imageEnv(), ...files, environmentOf(s));
}
const proxyAddress = (): string => {
  const nets = proxy.networks as Record<string, { ipv4_address?: string } | null>;
  const address = nets["edge"]?.ipv4_address;
  assert.ok(address !== undefined, "the proxy has a fixed address on the edge network");
  return address;
};
const inRange = (address: string, cidr: string): boolean => ipaddr.parse(address).match(ipaddr.parseCIDR(cidr));

describe("compose.yaml", () => {
  it("runs two orderbridge instances from this Dockerfile on one PostgreSQL", () => {
    assert.deepEqual(
      instances.map(([name]) => name),
      ["orderbridge-1", "orderbridge-2"],
    );
    for (const [name, s] of instances) {
      assert.equal(s.build, ".", `${name} is built from this repository's Dockerfile`);
      assert.deepEqual(s.depends_on, { postgres: { condition: "service_healthy" } }, name);
      assert.ok(networksOf(s).includes("db") && networksOf(s).includes("edge"), name);
      assert.equal(s.ports, undefined, `${name} is reached through the proxy only`);
    }
    const urls = new Set(instances.map(([, s]) => containerEnv(s)["DATABASE_URL"]));
    assert.equal(urls.size, 1, "the same DATABASE_URL");
    const url = new URL([...urls][0] as string);
    const pg = environmentOf(compose.services["postgres"] as Service);
    assert.equal(url.hostname, "postgres");
    assert.equal(decodeURIComponent(url.username), pg["POSTGRES_USER"]);
    assert.equal(decodeURIComponent(url.password), pg["POSTGRES_PASSWORD"]);
    assert.equal(url.pathname, `/${pg["POSTGRES_DB"]}`);
    assert.equal(compose.networks["db"]?.internal, true, "PostgreSQL reachable from the instances only");
    assert.deepEqual(networksOf(compose.services["postgres"] as Service), ["db"]);
  });

  it("sets only orderbridge settings in the instances, each valid by orderbridge's own loader", () => {
    const interpolated = new Set([...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]));
    for (const [name, s] of instances) {
      for (const v of Object.keys(environmentOf(s))) assert.ok(KNOWN.has(v), `${name}: ${v} is not an orderbridge setting`);
      // compose.env.example, commented-out suggestions included: settings, or what compose.yaml itself uses.
      for (const m of example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)) {
        const v = m[1] as string;
        assert.ok(KNOWN.has(v) || interpolated.has(v), `compose.env.example: ${v} is neither an orderbridge setting nor used by compose.yaml`);
      }
      assert.deepEqual(misspeltSettings(containerEnv(s)), [], `${name}: nothing orderbridge would warn about at start`);
      const config = loadConfig(containerEnv(s), { isTty: false });
      assert.equal(config.env, "production");
      assert.equal(config.database.kind, "postgres");
      assert.deepEqual(config.trustProxy, [proxyAddress()]);
    }
  });

  it("needs the secrets in .env: without them compose refuses to start, and so would orderbridge", () => {
    assert.throws(() => interpolateAll(raw, {}), /POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD in \.env/);
    const [, s] = instances[0] as [string, Service];
    const unfilled = {
      ...containerEnv(s),
      ...Object.fromEntries(
        Object.keys(parseEnvFile(example))
          .filter((k) => k !== "POSTGRES_PASSWORD")
          .map((k) => [k, ""]),
      ),
    };
    assert.throws(() => loadConfig(unfilled), /SP_HMAC_SECRETS is required in production/);
    assert.match(read(".gitignore"), /^\.env$/m, ".env is never committed");
    assert.match(read(".dockerignore"), /^\*\*\/\.env\*$/m, "nor sent to a build");
  });

  it("believes X-Forwarded-For from the proxy's fixed address alone, with every SP_AUTH mode", () => {
    const edge = compose.networks["edge"]?.ipam?.config[0];
    assert.ok(edge !== undefined, "the edge network has a fixed subnet");
    const address = proxyAddress();
    assert.ok(inRange(address, edge.subnet), `the proxy's ${address} is in ${edge.subnet}`);
    assert.ok(edge.ip_range !== undefined && inRange(edge.ip_range.split("/")[0] as string, edge.subnet), "dynamic addresses come from a range of the subnet");
    assert.ok(!inRange(address, edge.ip_range), "no other container can be given the proxy's address");
    assert.deepEqual(networksOf(proxy), ["edge"], "the proxy reaches the instances over the edge network only");

    for (const [name, s] of instances) {
      for (const auth of ["hmac", "ip", "both", "either"]) {
        // An allowlist behind the proxy works only when TRUST_PROXY names the proxies (not true, not a hop count).
        const config = loadConfig(containerEnv(s, { SP_AUTH: auth, SP_ALLOWED_IPS: "203.0.113.0/24" }), { isTty: false });
        assert.equal(config.subscribePro.auth, auth);
        // Express's own trust function, as the service sets it (createApp: app.set("trust proxy", config.trustProxy)).
        const app = express();
        app.set("trust proxy", config.trustProxy);
        const trust = app.get("trust proxy fn") as (addr: string, i: number) => boolean;
        assert.equal(trust(address, 0), true, `${name}: the proxy is trusted`);
        const [first] = edge.ip_range.split("/") as [string];
        const others = [ipaddr.parse(first).toString(), "172.30.0.1", "172.30.0.254", "203.0.113.9"];
        for (const other of others) assert.equal(trust(other, 0), false, `${name}: ${other} (another container, the gateway, a client) is not trusted`);
      }
    }
  });

  it("puts the proxy in front of every instance, on the port they listen on, routing to ready ones only", () => {
    assert.deepEqual(proxy.configs, [{ source: "caddyfile", target: "/etc/caddy/Caddyfile" }]);
    const upstreams = /^\s*reverse_proxy ([^{\n]+)\{/m.exec(caddyfile)?.[1]?.trim().split(/\s+/);
    const expected = instances.map(([name, s]) => `${name}:${loadConfig(containerEnv(s)).port}`);
    assert.deepEqual(upstreams, expected);
    assert.match(caddyfile, /^\s*health_uri \/readyz$/m);
    // Caddy replaces a client's X-Forwarded-For unless told to trust it: orderbridge sees the real client.
    assert.doesNotMatch(caddyfile, /trusted_proxies|header_up\s+[+-]?X-Forwarded-For/i);
    assert.match(caddyfile, /^\s*respond \/metrics 404$/m, "metrics are scraped per instance, not through the proxy");
    assert.deepEqual(
      proxy.depends_on,
      instances.map(([name]) => name),
    );
  });

  it("gives a stopping instance its graceful shutdown before Docker kills it", () => {
    for (const [name, s] of instances) {
      const grace = /^(\d+)s$/.exec(s.stop_grace_period ?? "");
      assert.ok(grace, `${name}: stop_grace_period in seconds`);
      const { shutdownTimeoutMs } = loadConfig(containerEnv(s));
      assert.ok(Number(grace[1]) * 1000 >= shutdownTimeoutMs + 2000, `${name}: ${s.stop_grace_period} covers SHUTDOWN_TIMEOUT_MS (${shutdownTimeoutMs} ms) and about 2 s`);
    }
  });
});
