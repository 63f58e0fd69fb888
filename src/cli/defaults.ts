import fs from "node:fs";
import path from "node:path";
import { GENERATED_SECRET_FILE } from "../bootstrap.js";

/**
 * The defaults every command shares, so the same option means the same thing everywhere: the
 * service's URL from `--url`/`--to`, else ORDERBRIDGE_URL, else http://localhost:3000; secrets from
 * the flag, else the variable the service itself reads (and for the callback secret, the secret the
 * service generates in DATA_DIR when SP_HMAC_SECRETS is not set).
 */
export const DEFAULT_URL = "http://localhost:3000";
export const SP_PATH = "/callbacks/subscribe-pro/order";
export const RECHARGE_PATH = "/webhooks/recharge";

type Env = Record<string, string | undefined>;

/** The service's base URL: the flag, else ORDERBRIDGE_URL, else http://localhost:3000. */
export function serviceUrl(flag: unknown, env: Env = process.env): string {
  if (typeof flag === "string" && flag !== "") return flag;
  const fromEnv = env["ORDERBRIDGE_URL"];
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_URL;
}

/** The service's URL with a path of its own appended (`…/callbacks/subscribe-pro/order`). */
export const servicePath = (base: string, p: string): string => `${base.replace(/\/+$/, "")}${p}`;

const first = (list: string | undefined): string | undefined =>
  (list ?? "")
    .split(",")
    .map((s) => s.trim())
    .find((s) => s !== "");

/**
 * The Subscribe Pro callback secret: the first of SP_HMAC_SECRETS, else the secret the service
 * generated in DATA_DIR (default ./data) when it was started without one.
 */
export function spSecret(env: Env = process.env): string | undefined {
  const listed = first(env["SP_HMAC_SECRETS"]);
  if (listed !== undefined) return listed;
  const file = path.join(env["DATA_DIR"] ?? "./data", GENERATED_SECRET_FILE);
  try {
    const secret = fs.readFileSync(file, "utf8").trim();
    return secret === "" ? undefined : secret;
  } catch {
    return undefined;
  }
}

/** The Recharge API client secret: the first of RECHARGE_CLIENT_SECRETS. */
export const rechargeSecret = (env: Env = process.env): string | undefined => first(env["RECHARGE_CLIENT_SECRETS"]);

/** The admin token: the flag, else ADMIN_TOKEN. */
export function adminToken(flag: unknown, env: Env = process.env): string | undefined {
  return typeof flag === "string" && flag !== "" ? flag : env["ADMIN_TOKEN"];
}
