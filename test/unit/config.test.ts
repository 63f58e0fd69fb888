import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeConfig, loadConfig, maskUrl, misspeltSettingMessage, misspeltSettings, parseBytes } from "../../src/config.js";
import { ConfigError } from "../../src/errors.js";

describe("loadConfig", () => {
  it("has working defaults", () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.database.kind, "sqlite");
    assert.equal(c.subscribePro.auth, "hmac");
    assert.deepEqual(c.subscribePro.hmacSecrets, []);
    assert.equal(c.trustProxy, false);
    assert.equal(c.bodyLimitBytes, 1024 * 1024);
    assert.equal(c.adminToken, undefined);
    assert.equal(c.log.format, "json");
    assert.ok(Object.isFrozen(c));
  });

  it("reads every variable", () => {
    const c = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      DATABASE_URL: "postgres://u:pw@db:5432/orders",
      DATABASE_SCHEMA: "ob",
      DATABASE_PREPARED_STATEMENTS: "false",
      SP_HMAC_SECRETS: "new, old ,",
      SP_ALLOWED_IPS: "10.0.0.0/8, 2001:db8::/32",
      SP_AUTH: "both",
      TRUST_PROXY: "loopback, 10.0.0.1",
      ADMIN_TOKEN: "0123456789abcdef",
      LOG_LEVEL: "debug",
      BODY_LIMIT: "512kb",
      ORDER_NUMBER_PREFIX: "ABC-",
      ORDER_NUMBER_START: "100271",
    });
    assert.equal(c.port, 8080);
    assert.equal(c.host, "127.0.0.1");
    assert.deepEqual(c.database, { kind: "postgres", url: "postgres://u:pw@db:5432/orders", schema: "ob", poolSize: 10, preparedStatements: false, pipeline: true });
    assert.deepEqual(c.subscribePro.hmacSecrets, ["new", "old"]);
    assert.equal(c.subscribePro.allowlist.size, 2);
    assert.deepEqual(c.trustProxy, ["loopback", "10.0.0.1"]);
    assert.equal(c.bodyLimitBytes, 512 * 1024);
    assert.deepEqual(c.orderNumbers, { prefix: "ABC-", start: 100271 });
    const shown = JSON.stringify(describeConfig(c));
    assert.doesNotMatch(shown, /pw@|0123456789abcdef|"new"|"old"/, "secrets are masked");
  });

  it("parses TRUST_PROXY forms", () => {
    assert.equal(loadConfig({ TRUST_PROXY: "true" }).trustProxy, true);
    assert.equal(loadConfig({ TRUST_PROXY: "off" }).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: "2" }).trustProxy, 2);
  });

  it("TRUST_PROXY=true or a hop count is refused with every SP_AUTH mode that consults the allowlist, saying why and what to set", () => {
    for (const auth of ["ip", "both", "either"]) {
      for (const trust of ["true", "yes", "on", "1", "2"]) {
        assert.throws(
          () => loadConfig({ SP_AUTH: auth, SP_ALLOWED_IPS: "203.0.113.7", SP_HMAC_SECRETS: "s", TRUST_PROXY: trust }),
          (e: unknown) => {
            assert.ok(e instanceof ConfigError);
            assert.match(e.message, new RegExp(`TRUST_PROXY=${trust} cannot be used with SP_AUTH=${auth}`));
            assert.match(e.message, /X-Forwarded-For: <an address in SP_ALLOWED_IPS>/, "why");
            assert.match(e.message, /Set TRUST_PROXY to the addresses or CIDR ranges your proxies connect from/, "what to set instead");
            return true;
          },
          `${auth} + ${trust}`,
        );
      }
      // What is allowed: no proxy, or the proxies' own addresses.
      for (const [trust, parsed] of [
        [undefined, false],
        ["false", false],
        ["0", false],
        ["10.0.0.5", ["10.0.0.5"]],
        ["10.0.0.5, 10.0.1.0/24", ["10.0.0.5", "10.0.1.0/24"]],
        ["loopback", ["loopback"]],
        ["linklocal, uniquelocal", ["linklocal", "uniquelocal"]],
      ] as const) {
        const env = { SP_AUTH: auth, SP_ALLOWED_IPS: "203.0.113.7", SP_HMAC_SECRETS: "s", ...(trust === undefined ? {} : { TRUST_PROXY: trust }) };
        assert.deepEqual(loadConfig(env).trustProxy, parsed, `${auth} + ${String(trust)}`);
      }
    }
    // With signatures alone the address only reaches the logs (the service warns at start).
    assert.equal(loadConfig({ SP_AUTH: "hmac", TRUST_PROXY: "true" }).trustProxy, true);
    assert.equal(loadConfig({ SP_AUTH: "hmac", SP_ALLOWED_IPS: "203.0.113.7", TRUST_PROXY: "3" }).trustProxy, 3);
  });

  it("LOG_REDACT_EMAIL: off by default", () => {
    assert.equal(loadConfig({}).log.redactEmail, false);
    assert.equal(loadConfig({ LOG_REDACT_EMAIL: "true" }).log.redactEmail, true);
    assert.throws(() => loadConfig({ LOG_REDACT_EMAIL: "maybe" }), /LOG_REDACT_EMAIL must be true or false/);
  });

  it("refuses to start in production without a secret, naming the fix", () => {
    assert.throws(
      () => loadConfig({ NODE_ENV: "production" }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /SP_HMAC_SECRETS is required in production/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ NODE_ENV: "production", SP_AUTH: "ip" }), /SP_AUTH=ip needs SP_ALLOWED_IPS/);
    assert.doesNotThrow(() => loadConfig({ NODE_ENV: "production", SP_AUTH: "ip", SP_ALLOWED_IPS: "10.0.0.0/8" }));
    assert.doesNotThrow(() => loadConfig({ NODE_ENV: "production", SP_AUTH: "either", SP_ALLOWED_IPS: "10.0.0.0/8" }));
    assert.doesNotThrow(() => loadConfig({ NODE_ENV: "production", SP_HMAC_SECRETS: "s" }));
    // Commands that serve no callbacks (migrate) do not need it.
    assert.doesNotThrow(() => loadConfig({ NODE_ENV: "production" }, { forServing: false }));
  });

  it("PostgreSQL settings without DATABASE_URL are refused (the instance would run on its own SQLite file)", () => {
    assert.throws(() => loadConfig({ DATABASE_SCHEMA: "shop_a" }), /DATABASE_SCHEMA applies to PostgreSQL only: set DATABASE_URL too/);
    assert.throws(() => loadConfig({ DATABASE_POOL_SIZE: "5" }), /DATABASE_POOL_SIZE applies to PostgreSQL only/);
    assert.equal(loadConfig({ DATABASE_URL: "postgres://h/db", DATABASE_SCHEMA: "shop_a" }).database.kind, "postgres");
  });

  it("URLs are masked for logs: credentials and secret-looking query parameters", () => {
    assert.equal(maskUrl("postgres://app:pw@db:5432/orders?password=pw2&sslmode=require"), "postgres://****:****@db:5432/orders?password=****&sslmode=require");
    assert.equal(maskUrl("https://oms.example.com/orders?api_key=k&x=1"), "https://oms.example.com/orders?api_key=****&x=1");
    const described = JSON.stringify(describeConfig(loadConfig({ DATABASE_URL: "postgres://app@db/orders?password=TopSecret" })));
    assert.doesNotMatch(described, /TopSecret/);
    // Every URL setting, a proxy in front of Shopify's API too.
    const shop = describeConfig(
      loadConfig({ PLATFORM: "shopify", SHOPIFY_SHOP: "tea-shop", SHOPIFY_ACCESS_TOKEN: "shpat_x", SHOPIFY_API_URL: "https://user:ProxyPass@proxy.example.com/shopify" }),
    );
    assert.doesNotMatch(JSON.stringify(shop), /ProxyPass/);
    assert.match(JSON.stringify(shop), /proxy\.example\.com/);
  });

  it("HOST: an IP address or a host name", () => {
    for (const host of ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "localhost", "orderbridge-1.internal.example.com"]) {
      assert.equal(loadConfig({ HOST: host }).host, host);
    }
    for (const host of ["nothost!", "http://localhost", "a b", "-leading.example.com", "127.0.0.1:3000"]) {
      assert.throws(() => loadConfig({ HOST: host }), new RegExp(`HOST must be an IP address or a host name .*\\(got "${host.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"\\)`), host);
    }
  });

  it("reports every problem at once", () => {
    assert.throws(
      () => loadConfig({ PORT: "http", SP_AUTH: "maybe", SP_ALLOWED_IPS: "nope", BODY_LIMIT: "lots", LOG_LEVEL: "loud", ADMIN_TOKEN: "short", TRUST_PROXY: "x.y" }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        for (const name of ["PORT", "SP_AUTH", "SP_ALLOWED_IPS", "BODY_LIMIT", "LOG_LEVEL", "ADMIN_TOKEN", "TRUST_PROXY"]) {
          assert.match(e.message, new RegExp(name));
        }
        return true;
      },
    );
    assert.throws(() => loadConfig({ DATABASE_URL: "mysql://x" }), /DATABASE_URL must be a postgres/);
    assert.throws(() => loadConfig({ PLATFORM: "magento" }), /PLATFORM "magento" is not available/);
  });

  it("retention: 30 days and hourly by default; 0 keeps everything; shorter than a week is refused", () => {
    assert.deepEqual(loadConfig({}).retention, { days: 30, pruneIntervalMs: 3_600_000 });
    assert.deepEqual(loadConfig({ RETENTION_DAYS: "0", PRUNE_INTERVAL_MS: "60000" }).retention, { days: 0, pruneIntervalMs: 60_000 });
    assert.equal(loadConfig({ RETENTION_DAYS: "7" }).retention.days, 7);
    assert.throws(
      () => loadConfig({ RETENTION_DAYS: "6" }),
      /RETENTION_DAYS must be 0 \(keep everything\) or at least 7 \(got 6\): a placed order's stored answer must outlive any retry Subscribe Pro/,
    );
    assert.throws(() => loadConfig({ RETENTION_DAYS: "2.5" }), /RETENTION_DAYS must be a whole number/);
    assert.throws(() => loadConfig({ PRUNE_INTERVAL_MS: "10" }), /PRUNE_INTERVAL_MS must be a whole number from 1000/);
    assert.deepEqual(describeConfig(loadConfig({ RETENTION_DAYS: "0" })).retention, { days: "0 (keep everything)", pruneIntervalMs: 3_600_000 });
    assert.deepEqual(describeConfig(loadConfig({})).retention, { days: 30, pruneIntervalMs: 3_600_000 });
  });

  it("parses sizes", () => {
    assert.equal(parseBytes("1mb"), 1048576);
    assert.equal(parseBytes("10KB"), 10240);
    assert.equal(parseBytes("100"), 100);
    assert.equal(parseBytes("lots"), undefined);
  });

  it("Recharge: off by default; secrets need an API token unless write-back is off; every value checked", () => {
    const off = loadConfig({});
    assert.deepEqual(off.recharge.clientSecrets, []);
    assert.equal(off.recharge.apiUrl, "https://api.rechargeapps.com");
    assert.equal(off.recharge.apiVersion, "2021-11");
    assert.deepEqual(off.recharge.rateLimit, { burst: 40, perSecond: 2 });
    assert.equal(off.recharge.signatureToleranceSeconds, 172_800);
    assert.equal(off.jobs.maxAttempts, 20);
    assert.ok(off.jobs.leaseMs >= 60_000);

    assert.throws(() => loadConfig({ RECHARGE_CLIENT_SECRETS: "s" }), /RECHARGE_API_TOKEN is required with RECHARGE_CLIENT_SECRETS/);
    const noWriteBack = loadConfig({ RECHARGE_CLIENT_SECRETS: "s", RECHARGE_API_TOKEN: "t", RECHARGE_WRITEBACK: "off" });
    assert.equal(noWriteBack.recharge.apiToken, undefined);
    const on = loadConfig({
      RECHARGE_CLIENT_SECRETS: "new, old",
      RECHARGE_API_TOKEN: "tok",
      RECHARGE_API_VERSION: "2021-01",
      RECHARGE_RATE_LIMIT_BURST: "20",
      RECHARGE_RATE_LIMIT_PER_SECOND: "1.5",
      RECHARGE_WRITEBACK_ORDER_NUMBER: "false",
      WORKER_CONCURRENCY: "8",
    });
    assert.deepEqual(on.recharge.clientSecrets, ["new", "old"]);
    assert.equal(on.recharge.apiVersion, "2021-01");
    assert.deepEqual(on.recharge.rateLimit, { burst: 20, perSecond: 1.5 });
    assert.equal(on.recharge.sendOrderNumber, false);
    assert.equal(on.jobs.concurrency, 8);

    try {
      loadConfig({ RECHARGE_API_VERSION: "2023-01", RECHARGE_RATE_LIMIT_PER_SECOND: "0", RECHARGE_API_URL: "ftp://x", RECHARGE_WRITEBACK_ORDER_NUMBER: "maybe" });
      assert.fail("should refuse");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      for (const v of ["RECHARGE_API_VERSION", "RECHARGE_RATE_LIMIT_PER_SECOND", "RECHARGE_API_URL", "RECHARGE_WRITEBACK_ORDER_NUMBER"]) {
        assert.match(e.message, new RegExp(v));
      }
    }
    const described = JSON.stringify(describeConfig(on));
    assert.doesNotMatch(described, /"tok"|new|old/, "no secret or token in the described configuration");
  });
});

describe("loadConfig: PLATFORM_HTTP_SECRET (issue #14, item 7)", () => {
  const http = (secret: string) => ({ PLATFORM: "http", PLATFORM_HTTP_URL: "https://oms.example.com/orders", PLATFORM_HTTP_SECRET: secret });

  it("refuses a key the Standard Webhooks libraries cannot use, with every other problem, saying what to set", () => {
    // "16+ characters" of text was enough before; such a key is not base64, so its meaning would be unclear.
    assert.throws(
      () => loadConfig({ ...http("oms-secret-0123456789"), PORT: "99999" }),
      (e: Error) =>
        /PORT must be/.test(e.message) &&
        /PLATFORM_HTTP_SECRET is not a Standard Webhooks key[\s\S]*openssl rand -base64 32[\s\S]*raw:<the text>/.test(e.message) &&
        !e.message.includes("oms-secret-0123456789"),
    );
    assert.throws(() => loadConfig(http("0123456789abcdef")), /PLATFORM_HTTP_SECRET decodes to 12 bytes; at least 16/);
    assert.throws(() => loadConfig(http("raw:thé-vert-0123456789")), /raw: key must be printable ASCII/);
    assert.throws(() => loadConfig({ PLATFORM: "http", PLATFORM_HTTP_URL: "https://oms.example.com/orders" }), /PLATFORM_HTTP_SECRET[\s\S]*openssl rand -base64 32/);
  });

  it("takes whsec_<base64>, <base64> and raw:<text>, and describes which without showing it", () => {
    const forms = {
      whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw: "**** (whsec_<base64>, 24 bytes)",
      MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw: "**** (<base64>, 24 bytes)",
      "raw:oms-secret-0123456789": "**** (raw:<text>, 21 bytes)",
    };
    for (const [secret, described] of Object.entries(forms)) {
      const c = loadConfig(http(secret));
      assert.equal(c.platform.http?.secret, secret);
      assert.equal((describeConfig(c)["platform"] as { http: { secret: string } }).http.secret, described);
    }
  });
});

describe("loadConfig: platforms", () => {
  it("http needs a URL and a secret; shopify a shop and a token; a module path is resolved", () => {
    assert.throws(() => loadConfig({ PLATFORM: "http" }), /PLATFORM_HTTP_URL[\s\S]*PLATFORM_HTTP_SECRET/);
    const key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const http = loadConfig({ PLATFORM: "http", PLATFORM_HTTP_URL: "https://oms.example.com/orders", PLATFORM_HTTP_SECRET: key, PLATFORM_TIMEOUT_MS: "2500" });
    assert.deepEqual(http.platform.http, { url: "https://oms.example.com/orders", cartUrl: undefined, secret: key });
    assert.equal(http.platform.timeoutMs, 2500);
    assert.doesNotMatch(JSON.stringify(describeConfig(http)), /MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/);

    assert.throws(() => loadConfig({ PLATFORM: "shopify" }), /SHOPIFY_SHOP[\s\S]*SHOPIFY_ACCESS_TOKEN/);
    const shop = loadConfig({ PLATFORM: "shopify", SHOPIFY_SHOP: "https://tea-shop.myshopify.com", SHOPIFY_ACCESS_TOKEN: "shpat_x" });
    assert.deepEqual(shop.platform.shopify, { shop: "tea-shop", accessToken: "shpat_x", apiVersion: "2025-10", apiUrl: undefined });
    assert.doesNotMatch(JSON.stringify(describeConfig(shop)), /shpat_x/);
    assert.throws(() => loadConfig({ PLATFORM: "shopify", SHOPIFY_SHOP: "s", SHOPIFY_ACCESS_TOKEN: "t", SHOPIFY_API_VERSION: "latest" }), /SHOPIFY_API_VERSION/);

    const mod = loadConfig({ PLATFORM: "./adapters/my-oms.js" });
    assert.ok(mod.platform.modulePath?.endsWith("/adapters/my-oms.js"));
    assert.throws(() => loadConfig({ PLATFORM: "magento" }), /PLATFORM "magento" is not available/);
  });
});

describe("misspelt settings (issue #15, item 4)", () => {
  const suggestions = (env: Record<string, string>) => misspeltSettings(env).map((m) => [m.name, m.suggestion]);

  it("names a variable close to a setting (a trailing S more or less, up to two letters, another case) with the setting", () => {
    assert.deepEqual(
      suggestions({
        RECHARGE_CLIENT_SECRET: "whsec-value",
        SP_HMAC_SECRET: "s",
        DATABASE_URI: "postgres://h/db",
        JOB_MAX_ATTEMPT: "3",
        SHOPIFY_ACCESS_TOKENS: "t",
        PLATFORM_DEADLINE_SM: "100",
        sp_auth: "ip",
        WORKERS_CONCURRENCY: "8",
      }),
      [
        ["DATABASE_URI", "DATABASE_URL"],
        ["JOB_MAX_ATTEMPT", "JOB_MAX_ATTEMPTS"],
        ["PLATFORM_DEADLINE_SM", "PLATFORM_DEADLINE_MS"],
        ["RECHARGE_CLIENT_SECRET", "RECHARGE_CLIENT_SECRETS"],
        ["SHOPIFY_ACCESS_TOKENS", "SHOPIFY_ACCESS_TOKEN"],
        ["SP_HMAC_SECRET", "SP_HMAC_SECRETS"],
        ["WORKERS_CONCURRENCY", "WORKER_CONCURRENCY"],
        ["sp_auth", "SP_AUTH"],
      ],
    );
  });

  it("leaves settings, far-off names and other programs' variables alone", () => {
    const env = {
      // Settings themselves.
      RECHARGE_CLIENT_SECRETS: "s",
      SP_HMAC_SECRETS: "s",
      NODE_ENV: "test",
      // orderbridge's first words, but more than two letters from any setting.
      PLATFORM_TIMEOUT: "100",
      RECHARGE_SOMETHING: "x",
      SHOPIFY_API_KEY: "k",
      DATABASE_HOST: "db",
      // Not orderbridge's: Node's own, the shell's, Docker's and npm's.
      NODE_OPTIONS: "--max-old-space-size=512",
      NODE_ENVS: "x",
      HOSTNAME: "c0ffee",
      PATH: "/usr/bin",
      npm_config_cache: "/tmp",
    };
    assert.deepEqual(suggestions(env), []);
  });

  it("the warning names the variable and the setting, never the value", () => {
    const [m] = misspeltSettings({ RECHARGE_CLIENT_SECRET: "rc-secret-value-0123" });
    assert.ok(m !== undefined);
    const line = misspeltSettingMessage(m);
    assert.equal(line, "RECHARGE_CLIENT_SECRET is not an orderbridge setting and is ignored: did you mean RECHARGE_CLIENT_SECRETS?");
    assert.doesNotMatch(JSON.stringify(m) + line, /rc-secret-value/);
  });
});
