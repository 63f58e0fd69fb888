import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { orderbridgeWebhook, verifyOrderbridgeRequest } from "../fixtures/platform-http/receiver.js";

/**
 * A merchant's order management system behind the generic HTTP platform, as an OMS team would build
 * it from our published contract: it verifies the Standard Webhooks signature with the official
 * `standardwebhooks` library, through the README's receiving example, validates the request
 * against schemas/platform-http/order-request.schema.json, deduplicates by webhook-id, and answers
 * per line. Faults can be scripted: hang, 500, 400, non-JSON, wrong shape, answer-after-creating-then-hang,
 * and a 422 or 500 whose error text quotes what it was sent (every payment value, the customer's
 * email, the signature), with an X-Request-Id, as a careless OMS would.
 */
export type OmsFault = "hang" | "500" | "400" | "not-json" | "wrong-shape" | "create-then-hang" | "slow" | "echo-422" | "echo-500";

/** The X-Request-Id an echo fault answers with. */
export const OMS_REQUEST_ID = "oms-req-42";

export interface OmsCall {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  verified: boolean;
  /** Why the signature did not verify (the library's words). */
  refused?: string;
  status: number;
}

export interface OmsStandIn {
  url: string;
  calls: OmsCall[];
  /** Placed orders by webhook-id. */
  orders: Map<string, { orderNumber: string; request: Record<string, unknown> }>;
  clearedCarts: string[];
  skus: Set<string>;
  queue(...faults: OmsFault[]): void;
  /** Drops the faults not used yet. */
  clear(): void;
  close(): Promise<void>;
}

const requestSchema = createSchemaRegistry().validator<Record<string, unknown>>("platform-http/order-request");

export async function startOmsStandIn(opts: { secret: string; skus: string[] }): Promise<OmsStandIn> {
  const wh = orderbridgeWebhook(opts.secret);
  const calls: OmsCall[] = [];
  const orders: OmsStandIn["orders"] = new Map();
  const clearedCarts: string[] = [];
  const skus = new Set(opts.skus);
  const faults: OmsFault[] = [];
  const held = new Set<ServerResponse>();
  let nextId = 9001;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const bytes = Buffer.concat(chunks);
      const raw = bytes.toString("utf8");
      const h = (n: string): string | undefined => (typeof req.headers[n] === "string" ? (req.headers[n] as string) : undefined);
      const verdict = verifyOrderbridgeRequest(wh, bytes, req.headers);
      const verified = verdict.ok;
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        /* recorded as {} */
      }
      const call: OmsCall = { path: req.url ?? "", headers: req.headers, body, verified, ...(verdict.ok ? {} : { refused: verdict.reason }), status: 0 };
      calls.push(call);
      const answer = (status: number, payload: unknown): void => {
        call.status = status;
        res.writeHead(status, { "Content-Type": "application/json" }).end(typeof payload === "string" ? payload : JSON.stringify(payload));
      };
      if (!verdict.ok) return answer(401, { error: verdict.reason });
      const fault = faults.shift();
      if (fault === "hang") return void held.add(res);
      if (fault === "500") return answer(500, { error: "database is down" });
      if (fault === "400") return answer(400, { error: "we do not accept this" });
      if (fault === "not-json") return answer(200, "<html>oops</html>");
      if (fault === "wrong-shape") return answer(200, { ok: "sure" });
      if (fault === "echo-422" || fault === "echo-500") {
        const sent = (body["order"] ?? {}) as { payment?: Record<string, string>; customer?: { email?: string } };
        const quoted = [...Object.values(sent.payment ?? {}), sent.customer?.email ?? "", h("webhook-signature") ?? ""].filter((v) => v !== "");
        res.setHeader("X-Request-Id", OMS_REQUEST_ID);
        return answer(fault === "echo-422" ? 422 : 500, { error: `payment declined: ${quoted.join(" / ")}`, hint: "call the bank" });
      }

      if (req.url === "/carts") {
        clearedCarts.push(String(body["cartId"]));
        return answer(204, "");
      }
      try {
        requestSchema(body);
      } catch (e) {
        return answer(422, { error: (e as Error).message });
      }
      const id = h("webhook-id") as string;
      const order = body["order"] as { allowPartial: boolean; lines: { ref: string; sku: string }[] };
      const earlier = orders.get(id);
      const lines = order.lines.map((l, i) =>
        skus.has(l.sku)
          ? { ref: l.ref, ok: true, platformItemId: earlier === undefined ? `${nextId}-${i}` : `${earlier.orderNumber.slice(4)}-${i}` }
          : { ref: l.ref, ok: false, message: `SKU ${l.sku} is unknown to the OMS` },
      );
      const failed = lines.some((l) => !l.ok);
      const placeable = lines.some((l) => l.ok) && (!failed || order.allowPartial);
      if (earlier !== undefined) {
        return answer(200, { replayed: true, order: { platformOrderId: earlier.orderNumber.slice(4), orderNumber: earlier.orderNumber }, lines });
      }
      if (!placeable) return answer(200, { order: null, lines: lines.map((l) => (l.ok ? { ...l, platformItemId: "" } : l)) });
      const n = nextId++;
      orders.set(id, { orderNumber: `OMS-${n}`, request: body });
      if (fault === "create-then-hang") return void held.add(res);
      const placed = { order: { platformOrderId: String(n), orderNumber: `OMS-${n}`, createdAt: "2024-05-01T14:05:09Z", status: "placed" }, lines };
      if (fault === "slow") return void setTimeout(() => answer(201, placed), 800);
      return answer(201, placed);
    });
  });
  const url = await listen(server);
  let closed = false;
  return {
    url,
    calls,
    orders,
    clearedCarts,
    skus,
    queue: (...f) => void faults.push(...f),
    clear: () => void faults.splice(0),
    async close() {
      if (closed) return;
      closed = true;
      for (const r of held) r.destroy();
      await close(server);
    },
  };
}
