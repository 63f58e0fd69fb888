import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type express from "express";
import request from "supertest";
import YAML from "yaml";
import { OPENAPI_FILE, schemaComponentName } from "../../src/http/openapi.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { rcFixture, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, minimalOrder, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

type Obj = Record<string, unknown>;
interface Layer {
  name: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  matchers?: ((path: string) => unknown)[];
}

/** "METHOD /path/{param}" for every route the app serves (405 catch-alls left out). */
function servedRoutes(app: express.Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        const methods = Object.keys(layer.route.methods);
        if (methods.length > 5) continue; // app.all(…): answers 405 for the other methods
        const p = `${prefix}${layer.route.path}`.replace(/[:*](\w+)/g, "{$1}");
        for (const m of methods) out.push(`${m.toUpperCase()} ${p}`);
      } else if (layer.handle?.stack !== undefined && layer.name === "router") {
        const mount = ["/admin", "/console"].find((candidate) => layer.matchers?.[0]?.(candidate));
        assert.ok(mount !== undefined, "a router mounted somewhere this test does not know");
        // The console is HTML pages for people (README "The console"), not part of the API.
        if (mount !== "/console") walk(layer.handle.stack, mount);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return out.sort();
}

describe("OpenAPI", () => {
  let t: TestService;
  let doc: Obj;
  before(async () => {
    t = await startService("sqlite");
    const res = await request(t.app).get("/openapi.json");
    assert.equal(res.status, 200);
    doc = res.body as Obj;
  });
  after(() => t.stop());

  it("is OpenAPI 3.1, self-contained: every $ref outside a bundled schema points into the document", () => {
    assert.equal(doc["openapi"], "3.1.0");
    const refs: string[] = [];
    const walk = (n: unknown, inSchema: boolean): void => {
      if (Array.isArray(n)) return n.forEach((x) => walk(x, inSchema));
      if (n === null || typeof n !== "object") return;
      const o = n as Obj;
      if (typeof o["$ref"] === "string" && !inSchema) refs.push(o["$ref"]);
      for (const [k, v] of Object.entries(o)) walk(v, inSchema || typeof o["$id"] === "string" || k === "$defs");
    };
    walk(doc, false);
    assert.ok(refs.length > 10);
    for (const r of refs) assert.match(r, /^#\/components\//, r);
    const components = doc["components"] as Obj;
    for (const r of refs) {
      const [, section, name] = /^#\/components\/(\w+)\/(\w+)$/.exec(r) ?? [];
      assert.ok(section !== undefined && name !== undefined && (components[section] as Obj)[name] !== undefined, `${r} resolves`);
    }
  });

  it("documents exactly the routes the app serves", () => {
    const documented: string[] = [];
    for (const [p, item] of Object.entries(doc["paths"] as Obj)) {
      for (const m of ["get", "post", "put", "patch", "delete"]) if ((item as Obj)[m] !== undefined) documented.push(`${m.toUpperCase()} ${p}`);
    }
    assert.deepEqual(documented.sort(), servedRoutes(t.app));
  });

  it("every example validates against its schema", () => {
    const registry = createSchemaRegistry();
    const schemas = (doc["components"] as Obj)["schemas"] as Obj;
    const validatorFor = (ref: string): ((v: unknown) => unknown) => {
      const name = ref.replace("#/components/schemas/", "");
      const id = (schemas[name] as Obj)["$id"];
      assert.equal(typeof id, "string", `${ref} is a bundled JSON Schema`);
      return registry.validator(
        String(id)
          .replace("https://orderbridge.dev/schemas/", "")
          .replace(/\.schema\.json$/, ""),
      );
    };
    let checked = 0;
    const walk = (n: unknown, where: string): void => {
      if (Array.isArray(n)) return n.forEach((x, i) => walk(x, `${where}/${i}`));
      if (n === null || typeof n !== "object") return;
      const o = n as Obj;
      if (o["examples"] !== undefined && typeof o["schema"] === "object" && o["schema"] !== null) {
        const schema = o["schema"] as Obj;
        const oneOf = schema["oneOf"] as Obj[] | undefined;
        const refs = typeof schema["$ref"] === "string" ? [schema["$ref"]] : (oneOf ?? (schema["anyOf"] as Obj[] | undefined) ?? []).map((s) => String(s["$ref"]));
        for (const [name, ex] of Object.entries(o["examples"] as Obj)) {
          const value = (ex as Obj)["value"];
          const passes = refs.filter((r) => {
            try {
              validatorFor(r)(value);
              return true;
            } catch {
              return false;
            }
          });
          assert.ok(passes.length > 0, `example ${where}/examples/${name} matches none of ${refs.join(", ")}`);
          // oneOf means exactly one: a body matching two branches fails a validating client.
          if (oneOf !== undefined) assert.equal(passes.length, 1, `example ${where}/examples/${name} matches ${passes.join(" and ")} of a oneOf`);
          checked++;
        }
      }
      for (const [k, v] of Object.entries(o)) walk(v, `${where}/${k}`);
    };
    walk(doc, "");
    assert.ok(checked >= 6, `only ${checked} examples checked`);
  });

  it("its request example is a request the service accepts", async () => {
    const paths = doc["paths"] as Obj;
    const op = (paths["/callbacks/subscribe-pro/order"] as Obj)["post"] as Obj;
    const example = ((((op["requestBody"] as Obj)["content"] as Obj)["application/json"] as Obj)["examples"] as Obj)["smallest"] as Obj;
    const res = await t.callback(example["value"]);
    assert.equal(res.status, 201);
  });
});

/** Keys whose values are data (examples, schema values), where null and any key are legitimate. */
const DATA_KEYS = new Set(["example", "examples", "value", "default", "const", "enum"]);
/** Keys whose values are maps of names (a schema's properties), not OpenAPI or JSON Schema objects. */
const NAME_MAPS = new Set(["properties", "patternProperties", "$defs", "schemas", "responses", "parameters", "headers", "securitySchemes", "requestBodies", "paths", "content"]);

/**
 * Every place a plain YAML reading would accept but that is no document: a key with no value (in a
 * flow mapping, `{ description: a, b }` makes `b` a key of null), and a description, summary or
 * title that is not text.
 */
function junk(doc: unknown): string[] {
  const found: string[] = [];
  const walk = (n: unknown, where: string, namesHere: boolean): void => {
    if (Array.isArray(n)) return n.forEach((x, i) => walk(x, `${where}/${i}`, false));
    if (n === null || typeof n !== "object") return;
    for (const [k, v] of Object.entries(n as Obj)) {
      const at = `${where}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      if (v === null) found.push(`${at} is null`);
      if (!namesHere && ["description", "summary", "title"].includes(k) && typeof v !== "string") found.push(`${at} is not a string`);
      if (!namesHere && DATA_KEYS.has(k)) continue;
      walk(v, at, !namesHere && NAME_MAPS.has(k));
    }
  };
  walk(doc, "", false);
  return found;
}

describe("OpenAPI document as written", () => {
  const text = fs.readFileSync(OPENAPI_FILE, "utf8");
  // strict and uniqueKeys: a repeated key or a YAML-1.1-ism is an error, not a silent overwrite.
  const written = YAML.parse(text, { strict: true, uniqueKeys: true, prettyErrors: true }) as Obj;

  it("has no keys without values and every description is text", () => {
    assert.deepEqual(junk(written), []);
  });

  it("is what GET /openapi.json serves, with only the schema files bundled in", async () => {
    const t = await startService("sqlite");
    try {
      const served = (await request(t.app).get("/openapi.json")).body as Obj;
      assert.deepEqual(junk(served), []);
      const bundled = new Set<string>();
      const refsToComponents = (n: unknown): unknown => {
        if (Array.isArray(n)) return n.map(refsToComponents);
        if (n === null || typeof n !== "object") return n;
        const out: Obj = {};
        for (const [k, v] of Object.entries(n as Obj)) {
          if (k === "$ref" && typeof v === "string" && v.startsWith("schemas/")) {
            bundled.add(schemaComponentName(v));
            out[k] = `#/components/schemas/${schemaComponentName(v)}`;
          } else out[k] = refsToComponents(v);
        }
        return out;
      };
      const expected = refsToComponents(written);
      const withoutBundled = structuredClone(served);
      const schemas = (withoutBundled["components"] as Obj)["schemas"] as Obj;
      for (const name of bundled) {
        assert.ok(name in schemas, `${name} is bundled`);
        delete schemas[name];
      }
      assert.deepEqual(withoutBundled, expected);
    } finally {
      await t.stop();
    }
  });
});

/**
 * Checks an answer against the document: its status is one the operation lists, and its JSON body
 * validates against that response's schema (references into components resolved as a client would).
 */
function answerChecker(doc: Obj): (method: string, path: string, res: request.Response) => void {
  const components = doc["components"] as Obj;
  const schemas = components["schemas"] as Obj;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const idOf = (name: string): string => {
    const own = (schemas[name] as Obj)["$id"];
    return typeof own === "string" ? own : `https://orderbridge.test/openapi/components/schemas/${name}`;
  };
  const rewrite = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(rewrite);
    if (n === null || typeof n !== "object") return n;
    const out: Obj = {};
    for (const [k, v] of Object.entries(n as Obj)) {
      out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/") ? idOf(v.slice("#/components/schemas/".length)) : rewrite(v);
    }
    return out;
  };
  for (const name of Object.keys(schemas)) ajv.addSchema({ ...(rewrite(schemas[name]) as Obj), $id: idOf(name) });
  const resolve = (o: Obj): Obj => {
    const ref = o["$ref"];
    if (typeof ref !== "string") return o;
    const [, section, name] = /^#\/components\/(\w+)\/(\w+)$/.exec(ref) ?? [];
    return resolve((components[String(section)] as Obj)[String(name)] as Obj);
  };
  return (method, path, res) => {
    const op = ((doc["paths"] as Obj)[path] as Obj | undefined)?.[method.toLowerCase()] as Obj | undefined;
    assert.ok(op !== undefined, `${method} ${path} is documented`);
    const response = (op["responses"] as Obj)[String(res.status)] as Obj | undefined;
    assert.ok(response !== undefined, `${method} ${path} answered ${res.status}, which the document does not list`);
    const schema = ((resolve(response)["content"] as Obj)["application/json"] as Obj)["schema"] as Obj;
    const validate = ajv.compile(rewrite(schema) as Obj);
    assert.ok(validate(res.body), `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${res.text}`);
    assert.match(String(res.headers["x-request-id"]), /./, "X-Request-Id, as documented");
  };
}

for (const { kind, skip } of await storeKinds()) {
  describe(`admin answers match the OpenAPI document [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    let check: (method: string, path: string, res: request.Response) => void;
    before(async () => {
      t = await startRechargeService(kind);
      check = answerChecker((await request(t.app).get("/openapi.json")).body as Obj);
      assert.equal((await t.callback(minimalOrder("oas-1"))).status, 201);
      assert.equal((await t.callback(minimalOrder("oas-2", [{ productSku: "RUBY-RED", qty: 2, subscription: { id: "s2" } }]))).status, 201);
      assert.equal((await t.webhook("order/created", rcFixture("2021-11", "order-created"))).status, 200);
      await t.settle();
    });
    after(() => t.stop());
    const admin = (method: "get" | "post", url: string, token: string | null = ADMIN_TOKEN) => {
      const r = method === "get" ? request(t.app).get(url) : request(t.app).post(url);
      return (token === null ? r : r.set("Authorization", `Bearer ${token}`)).then((x) => x);
    };

    it("orders: pages, one order, and their errors", async () => {
      const page1 = await admin("get", "/admin/orders?limit=1");
      check("GET", "/admin/orders", page1);
      assert.equal(page1.body.orders.length, 1);
      const page2 = await admin("get", `/admin/orders?limit=1&cursor=${String(page1.body.nextCursor)}`);
      check("GET", "/admin/orders", page2);
      const all = await admin("get", "/admin/orders?limit=200");
      check("GET", "/admin/orders", all);
      assert.deepEqual(new Set(all.body.orders.map((o: Obj) => o["source"])), new Set(["subscribe-pro", "recharge"]));
      for (const o of all.body.orders as Obj[]) check("GET", "/admin/orders/{orderNumber}", await admin("get", `/admin/orders/${encodeURIComponent(String(o["orderNumber"]))}`));
      check("GET", "/admin/orders/{orderNumber}", await admin("get", "/admin/orders/OB-404"));
      check("GET", "/admin/orders", await admin("get", "/admin/orders?limit=0&cursor=x"));
      check("GET", "/admin/orders", await admin("get", "/admin/orders", null));
    });

    it("events: the list, one event, a replay, and their errors", async () => {
      const page = await admin("get", "/admin/events?limit=200");
      check("GET", "/admin/events", page);
      const events = page.body.events as Obj[];
      assert.ok(events.some((e) => e["kind"] === "recharge.webhook") && events.some((e) => e["kind"] !== "recharge.webhook"), "a webhook event and a write-back job");
      const firstPage = await admin("get", "/admin/events?limit=1");
      check("GET", "/admin/events", firstPage);
      check("GET", "/admin/events", await admin("get", `/admin/events?limit=1&cursor=${String(firstPage.body.nextCursor)}`));
      for (const e of events) check("GET", "/admin/events/{id}", await admin("get", `/admin/events/${String(e["id"])}`));
      check("GET", "/admin/events/{id}", await admin("get", "/admin/events/evt_missing"));
      check("POST", "/admin/events/{id}/replay", await admin("post", `/admin/events/${String(events[0]?.["id"])}/replay`));
      check("POST", "/admin/events/{id}/replay", await admin("post", "/admin/events/evt_missing/replay"));
      check("GET", "/admin/events", await admin("get", "/admin/events?state=nope"));
      check("GET", "/admin/events", await admin("get", "/admin/events", "wrong-token-wrong-token"));
      await t.settle();
    });

    it("the other endpoints' answers too", async () => {
      check("GET", "/healthz", await request(t.app).get("/healthz"));
      check("GET", "/readyz", await request(t.app).get("/readyz"));
      check("POST", "/webhooks/recharge/{topic}", await t.webhook("order/created", rcFixture("2021-11", "order-created")));
      check("POST", "/webhooks/recharge/{topic}", await t.webhook("order/created", "{}", { sign: "none" }));
      // 405 is listed on the path's one operation, for the methods it does not take.
      check("POST", "/webhooks/recharge", await request(t.app).get("/webhooks/recharge"));
      check("POST", "/callbacks/subscribe-pro/order", await request(t.app).put("/callbacks/subscribe-pro/order"));
      await t.settle();
    });
  });
}
