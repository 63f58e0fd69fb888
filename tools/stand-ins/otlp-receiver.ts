import http from "node:http";
import { gunzipSync } from "node:zlib";
import { close, listen } from "./loopback.js";

/**
 * A real local HTTP server standing in for an OpenTelemetry collector's OTLP/HTTP receiver
 * (`POST /v1/traces`, JSON encoding as the OTLP specification writes it). It keeps every span it
 * was sent, flattened, and the headers of each export.
 */

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string | undefined;
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  /** The resource's attributes (service.name, …). */
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** The headers of each export request, lower-cased names. */
  exports: { path: string; contentType: string | undefined; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpAttr = { key: string; value: OtlpValue };

/** OTLP/JSON ids are hex; a base64 id (as protobuf-JSON writes bytes) is turned into hex too. */
function hexId(id: unknown): string {
  if (typeof id !== "string" || id === "") return "";
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex");
}

function attrs(list: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of (Array.isArray(list) ? list : []) as OtlpAttr[]) {
    const v = a.value ?? {};
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? "";
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const exports: OtlpReceiver["exports"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      exports.push({ path: req.url ?? "", contentType: req.headers["content-type"], headers: req.headers });
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      let raw = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
      let body: { resourceSpans?: unknown[] };
      try {
        body = JSON.parse(raw.toString("utf8")) as typeof body;
      } catch {
        res.writeHead(400, { "Content-Type": "application/json" }).end(JSON.stringify({ message: "the stand-in reads OTLP/JSON only" }));
        return;
      }
      for (const rs of (body.resourceSpans ?? []) as { resource?: { attributes?: unknown }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const parent = hexId(s["parentSpanId"]);
            const status = (s["status"] ?? {}) as { code?: number; message?: string };
            spans.push({
              traceId: hexId(s["traceId"]),
              spanId: hexId(s["spanId"]),
              parentSpanId: parent === "" ? undefined : parent,
              name: String(s["name"]),
              kind: Number(s["kind"] ?? 0),
              attributes: attrs(s["attributes"]),
              links: ((s["links"] ?? []) as { traceId?: unknown; spanId?: unknown }[]).map((l) => ({ traceId: hexId(l.traceId), spanId: hexId(l.spanId) })),
              statusCode: Number(status.code ?? 0),
              statusMessage: status.message,
              events: ((s["events"] ?? []) as { name?: string; attributes?: unknown }[]).map((e) => ({ name: String(e.name), attributes: attrs(e.attributes) })),
              resource,
            });
          }
        }
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  const url = await listen(server);
  return { url, spans, exports, close: () => close(server) };
}
