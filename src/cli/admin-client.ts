import axios, { type AxiosInstance } from "axios";

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

/** The admin API of a running orderbridge (--url, --token). */
export function adminClient(url: string, token: string | undefined): { get(path: string): Promise<unknown>; post(path: string): Promise<unknown> } {
  if (token === undefined || token === "") {
    throw new CliError("The admin API needs a token: pass --token or set ADMIN_TOKEN (the server's ADMIN_TOKEN).", 2);
  }
  const http: AxiosInstance = axios.create({
    baseURL: url.replace(/\/+$/, ""),
    timeout: 15_000,
    validateStatus: () => true,
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
  });
  const call = async (method: "get" | "post", path: string): Promise<unknown> => {
    let res;
    try {
      res = await http.request({ method, url: path });
    } catch (e) {
      throw new CliError(`Cannot reach orderbridge at ${url}: ${(e as Error).message}`, 69);
    }
    const body = res.data as { errorMessage?: string; errors?: { pointer?: string; message?: string }[] } | undefined;
    if (res.status === 404 && typeof body === "object" && body !== null && /No such endpoint/.test(String(body.errorMessage))) {
      throw new CliError(`${url} has no admin API: start orderbridge with ADMIN_TOKEN set.`, 1);
    }
    if (res.status >= 400) {
      // Each invalid field with its pointer, as the API names them (e.g. /query/limit).
      const fields = Array.isArray(body?.errors) ? body.errors.map((f) => `\n  ${f.pointer ?? "(request)"}: ${f.message ?? ""}`).join("") : "";
      throw new CliError(`${method.toUpperCase()} ${path} → ${res.status}: ${body?.errorMessage ?? JSON.stringify(body)}${fields}`, 1);
    }
    return body;
  };
  return { get: (p) => call("get", p), post: (p) => call("post", p) };
}
