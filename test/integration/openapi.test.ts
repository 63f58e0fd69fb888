import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type express from "express";
import request from "supertest";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { startService, type TestService } from "../helpers/service.js";

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
        const mount = ["/admin"].find((candidate) => layer.matchers?.[0]?.(candidate));
        assert.ok(mount !== undefined, "a router mounted somewhere this test does not know");
        walk(layer.handle.stack, mount);
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
      return registry.validator(String(id).replace("https://orderbridge.dev/schemas/", "").replace(/\.schema\.json$/, ""));
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
