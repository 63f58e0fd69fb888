import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";

export const GENERATED_SECRET_FILE = "sp-hmac-secret";

/**
 * Secure by default: with no SP_HMAC_SECRETS outside production, use the secret kept in the data
 * directory, creating it (mode 0600) on first start. The secret itself is never logged.
 */
export function ensureCallbackSecret(config: Config, log: Logger): Config {
  const sp = config.subscribePro;
  if (sp.hmacSecrets.length > 0 || sp.auth === "ip") return config;
  const file = path.join(config.dataDir, GENERATED_SECRET_FILE);
  let secret: string;
  if (fs.existsSync(file)) {
    secret = fs.readFileSync(file, "utf8").trim();
    log.warn("SP_HMAC_SECRETS is not set: using the generated callback secret", { file });
  } else {
    fs.mkdirSync(config.dataDir, { recursive: true });
    secret = randomBytes(32).toString("hex");
    fs.writeFileSync(file, secret + "\n", { mode: 0o600, flag: "wx" });
    log.warn("SP_HMAC_SECRETS is not set: generated a callback secret", { file });
  }
  log.warn(
    `Enter the secret from ${file} as the order callback shared secret in the Subscribe Pro merchant app, or set SP_HMAC_SECRETS; ` +
      `sign a test request with: openssl dgst -sha256 -hmac "$(cat ${file})" < body.json`,
  );
  return Object.freeze({ ...config, subscribePro: Object.freeze({ ...sp, hmacSecrets: [secret] }) });
}

/**
 * What `config check` says of the callback secret when none is configured: where the service will
 * take it from (the generated file, read or created at start), without creating anything.
 * Undefined when secrets are configured or not needed (SP_AUTH=ip).
 */
export function describeGeneratedSecret(config: Config): string | undefined {
  const sp = config.subscribePro;
  if (sp.hmacSecrets.length > 0 || sp.auth === "ip") return undefined;
  if (config.env === "production") return "none (production needs SP_HMAC_SECRETS unless the allowlist alone suffices)";
  const file = path.join(config.dataDir, GENERATED_SECRET_FILE);
  return fs.existsSync(file) ? `the generated secret in ${file}` : `none yet: one will be generated in ${file} at start`;
}
