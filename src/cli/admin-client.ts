import { createHttpClient, OutboundFailure } from "../outbound/http-client.js";

/** A failure the CLI turns into an exit code: 1 for an answer it did not want, 69 when nothing answered. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export interface AdminClient {
  get(path: string): Promise<unknown>;
  post(path: string): Promise<unknown>;
}

/** The admin API of a running orderbridge (--url, --token). */
export function adminClient(url: string, token: string | undefined): AdminClient {
  if (token === undefined || token === "") {
    throw new CliError("The admin API needs a token: pass --token or set ADMIN_TOKEN (the server's ADMIN_TOKEN).", 2);
  }
  const http = createHttpClient({
    baseUrl: url,
    timeoutMs: 15_000,
    keepAlive: false,
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    secrets: [token],
  });
  const call = async (method: "GET" | "POST", path: string): Promise<unknown> => {
    let res;
    try {
      res = await http.request({ method, url: path });
    } catch (e) {
      if (!(e instanceof OutboundFailure)) throw e;
      throw new CliError(`Cannot reach orderbridge at ${url}: ${e.message}`, 69);
    }
    const body = jsonOrText(res.text) as { errorMessage?: string; errors?: { pointer?: string; message?: string }[] } | undefined;
    if (res.status === 404 && typeof body === "object" && body !== null && /No such endpoint/.test(String(body.errorMessage))) {
      throw new CliError(`${url} has no admin API: start orderbridge with ADMIN_TOKEN set.`, 1);
    }
    if (res.status >= 400) {
      // Each invalid field with its pointer, as the API names them (e.g. /query/limit).
      const fields = Array.isArray(body?.errors) ? body.errors.map((f) => `\n  ${f.pointer ?? "(request)"}: ${f.message ?? ""}`).join("") : "";
      throw new CliError(`${method} ${path} → ${res.status}: ${body?.errorMessage ?? JSON.stringify(body)}${fields}`, 1);
    }
    return body;
  };
  return { get: (p) => call("GET", p), post: (p) => call("POST", p) };
}

function jsonOrText(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The admin API's largest page. */
export const MAX_PAGE = 200;

/**
 * Up to `limit` items of a paged admin list (all of them when `limit` is undefined), following the
 * page cursor the API answers (`cursorField` in the answer → `cursorParam` of the next request).
 */
export async function collectPages(
  client: AdminClient,
  o: { path: string; params: Record<string, unknown>; itemsField: string; cursorField: string; cursorParam: string; start?: string | undefined; limit: number | undefined },
): Promise<{ items: unknown[]; next: string | null }> {
  const items: unknown[] = [];
  let cursor: string | null = o.start ?? null;
  for (;;) {
    const want = o.limit === undefined ? MAX_PAGE : Math.min(MAX_PAGE, o.limit - items.length);
    const page = (await client.get(`${o.path}${query({ ...o.params, limit: want, [o.cursorParam]: cursor ?? undefined })}`)) as Record<string, unknown>;
    const got = Array.isArray(page[o.itemsField]) ? (page[o.itemsField] as unknown[]) : [];
    items.push(...got);
    const next = page[o.cursorField];
    cursor = typeof next === "string" || typeof next === "number" ? String(next) : null;
    if (cursor === null || got.length === 0 || (o.limit !== undefined && items.length >= o.limit)) return { items, next: cursor };
  }
}

/** `?a=1&b=2` of the params that are set (undefined, null and false are left out). */
export function query(params: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}
