// Tracked stock under concurrency (issue #13, item 3). The local platform takes the stock of an
// order's lines in one canonical order (by SKU), so two of our own transactions never wait for each
// other in a cycle; a deadlock or serialization failure caused by anything else (another client of
// the database) is retried as a whole transaction, and after a few tries answered 503 with
// Retry-After, never 500.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { CatalogFile } from "../../src/platforms/local/catalog.js";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";
import { postgresSkipReason, storeKinds } from "../helpers/stores.js";

const STOCK = 1_000_000;
const catalog: CatalogFile = {
  currency: "USD",
  products: [
    { sku: "TEA-A", name: "Tea A", price: "1.00", stock: STOCK },
    { sku: "TEA-B", name: "Tea B", price: "2.00", stock: STOCK },
  ],
  shippingMethods: { default: {} },
};

const line = (sku: string, qty: number, sub: string) => ({ productSku: sku, qty, subscription: { id: sub } });

async function stockOf(t: TestService, sku: string): Promise<number> {
  const row = await t.store.db.selectFrom("local_stock").select("available").where("sku", "=", sku).executeTakeFirstOrThrow();
  return Number(row.available);
}

async function ordersFor(t: TestService, token: string): Promise<number> {
  return (await t.store.db.selectFrom("local_orders").select("id").where("idempotency_key", "=", `sp:${token}`).execute()).length;
}

/** A connection of its own to the service's PostgreSQL schema: "another client of the database". */
async function outsideClient(t: TestService): Promise<pg.Client> {
  const cfg = t.config.database;
  if (cfg.kind !== "postgres") throw new Error("PostgreSQL only");
  const client = new pg.Client({ connectionString: cfg.url, ...(cfg.schema === undefined ? {} : { options: `-c search_path=${cfg.schema}` }) });
  await client.connect();
  return client;
}

/** Waits until a backend of the service waits for a lock `blocker` (a backend pid) holds. */
async function waitUntilBlockedBy(observer: pg.Client, blocker: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await observer.query("select count(*)::int as n from pg_stat_activity where $1 = any(pg_blocking_pids(pid))", [blocker]);
    if ((r.rows[0] as { n: number }).n > 0) return;
    if (Date.now() > until) throw new Error("no request of the service came to wait for the outside transaction's lock");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const { kind, skip } of await storeKinds()) {
  describe(`tracked stock under concurrency [${kind}]`, { skip }, () => {
    let t: TestService;
    before(async () => {
      t = await startService(kind, { catalog });
    });
    after(async () => {
      await t.stop();
    });

    it("orders listing the same tracked SKUs in opposite orders, 48 at once: every one 201, one order per token", async () => {
      const run = `opp-${process.pid}-${Date.now()}`;
      const N = 48;
      const bodies = Array.from({ length: N }, (_, i) =>
        minimalOrder(`${run}-${i}`, i % 2 === 0 ? [line("TEA-A", 1, "a"), line("TEA-B", 2, "b")] : [line("TEA-B", 2, "b"), line("TEA-A", 1, "a")]),
      );
      const answers = await Promise.all(bodies.map((b) => t.callback(b)));
      const statuses = answers.map((a) => a.status);
      assert.deepEqual(
        statuses.filter((s) => s !== 201),
        [],
        `every order is placed; got ${JSON.stringify(
          answers
            .filter((a) => a.status !== 201)
            .map((a) => [a.status, a.body.errorMessage])
            .slice(0, 5),
        )}`,
      );
      for (let i = 0; i < N; i++) assert.equal(await ordersFor(t, `${run}-${i}`), 1, `one order for token ${i}`);
      // Both lines of every order took their stock, once.
      assert.equal(await stockOf(t, "TEA-A"), STOCK - N);
      assert.equal(await stockOf(t, "TEA-B"), STOCK - 2 * N);
      // Each answer lists its items in the order of its request.
      for (const [i, a] of answers.entries()) {
        assert.deepEqual(
          a.body.orderDetails.items.map((d: { productSku: string }) => d.productSku),
          i % 2 === 0 ? ["TEA-A", "TEA-B"] : ["TEA-B", "TEA-A"],
        );
      }
      await reset(t);
    });

    it("the same tracked SKU on two lines takes its stock for both, in the order of the lines", async () => {
      const run = `twice-${process.pid}-${Date.now()}`;
      const lines = [line("TEA-B", 3, "x"), line("TEA-A", 1, "y"), line("TEA-B", 4, "z")];
      const res = await t.callback(minimalOrder(`${run}-1`, lines));
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(
        res.body.orderDetails.items.map((d: { subscriptionId: string }) => d.subscriptionId),
        ["x", "y", "z"],
      );
      assert.equal(await stockOf(t, "TEA-B"), STOCK - 7);
      // Stock for the first TEA-B line only: the first line gets it, the later one fails alone.
      await t.store.db.updateTable("local_stock").set({ available: 3 }).where("sku", "=", "TEA-B").execute();
      const partial = await t.callback(minimalOrder(`${run}-2`, lines, { allowSomeFailedItems: true }));
      assert.equal(partial.status, 202, partial.text);
      assert.deepEqual(
        partial.body.orderDetails.items.map((d: { subscriptionId: string }) => d.subscriptionId),
        ["x", "y"],
      );
      assert.deepEqual(
        partial.body.errorItems.map((e: { subscriptionId: string }) => e.subscriptionId),
        ["z"],
      );
      assert.equal(await stockOf(t, "TEA-B"), 0);
      await reset(t);
    });
  });
}

/** Puts the stock back for the next test. */
async function reset(t: TestService): Promise<void> {
  await t.store.db.updateTable("local_stock").set({ available: STOCK }).execute();
}

describe("tracked stock against an outside transaction [postgres]", { skip: (await postgresSkipReason()) ?? false }, () => {
  let t: TestService;
  let outside: pg.Client;
  let observer: pg.Client;
  before(async () => {
    t = await startService("postgres", { catalog });
    outside = await outsideClient(t);
    observer = await outsideClient(t);
  });
  after(async () => {
    await outside.end().catch(() => undefined);
    await observer.end().catch(() => undefined);
    await t.stop();
  });

  it("a real deadlock (the order waits on B, held outside, while the outside transaction updates A) is retried: 201, one order", async () => {
    const token = `deadlock-${process.pid}-${Date.now()}`;
    // The outside session waits long before checking for a deadlock, so PostgreSQL's check runs in
    // orderbridge's session and it is orderbridge's transaction that is chosen to fail with 40P01.
    await outside.query("set deadlock_timeout = '60s'");
    await outside.query("begin");
    await outside.query("update local_stock set available = available where sku = 'TEA-B'");
    const pid = ((await outside.query("select pg_backend_pid() as pid")).rows[0] as { pid: number }).pid;
    const answer = t.callback(minimalOrder(token, [line("TEA-A", 1, "a"), line("TEA-B", 1, "b")]));
    await waitUntilBlockedBy(observer, pid); // the order holds A and waits for B
    await outside.query("update local_stock set available = available where sku = 'TEA-A'"); // the cycle: orderbridge's transaction fails
    await outside.query("commit");
    const res = await answer;
    assert.equal(res.status, 201, `retried after the deadlock: ${res.status} ${res.text}`);
    assert.equal(await ordersFor(t, token), 1);
    assert.equal(await stockOf(t, "TEA-A"), STOCK - 1);
    assert.equal(await stockOf(t, "TEA-B"), STOCK - 1);
    const logs = t.logs.map((l) => JSON.parse(l) as { level: string; message: string; code?: string });
    assert.ok(
      logs.some((l) => l.level === "warn" && l.code === "40P01" && /transaction conflict/.test(l.message)),
      "the deadlock happened (and was logged as a warning) rather than being avoided by chance",
    );
    assert.deepEqual(
      logs.filter((l) => l.level === "error"),
      [],
      "nothing logged at error level",
    );
  });

  // A trigger in the test's own schema makes PostgreSQL raise the code for real inside the order's
  // transaction, the first `failures` times (counted by a sequence, which a rollback does not undo).
  async function failStockUpdates(code: "40001" | "40P01", failures: number): Promise<void> {
    await outside.query("drop sequence if exists stock_fault_calls");
    await outside.query("create sequence stock_fault_calls");
    await outside.query(`
      create or replace function stock_fault() returns trigger language plpgsql as $$
      begin
        if nextval('stock_fault_calls') <= ${failures} then
          raise exception 'injected ${code} for the test' using errcode = '${code}';
        end if;
        return new;
      end $$`);
    await outside.query("drop trigger if exists stock_fault on local_stock");
    await outside.query("create trigger stock_fault before update on local_stock for each row execute function stock_fault()");
  }
  async function clearFaults(): Promise<void> {
    await outside.query("drop trigger if exists stock_fault on local_stock");
  }

  for (const code of ["40001", "40P01"] as const) {
    it(`${code} twice in a row: the whole transaction is retried and the order placed once (201)`, async () => {
      await reset(t);
      await failStockUpdates(code, 2);
      try {
        const token = `retry-${code}-${process.pid}-${Date.now()}`;
        const res = await t.callback(minimalOrder(token, [line("TEA-A", 1, "a"), line("TEA-B", 1, "b")]));
        assert.equal(res.status, 201, res.text);
        assert.equal(await ordersFor(t, token), 1);
        assert.equal(await stockOf(t, "TEA-A"), STOCK - 1);
        // The retry sends the same answer again byte for byte.
        const again = await t.callback(minimalOrder(token, [line("TEA-A", 1, "a"), line("TEA-B", 1, "b")]));
        assert.equal(again.status, 201);
        assert.equal(again.text, res.text);
      } finally {
        await clearFaults();
      }
    });

    it(`${code} every time: 503 store_unavailable with Retry-After, nothing stored, and the token retries afresh`, async () => {
      await reset(t);
      await failStockUpdates(code, 1_000);
      const token = `exhausted-${code}-${process.pid}-${Date.now()}`;
      const body = minimalOrder(token, [line("TEA-A", 1, "a"), line("TEA-B", 1, "b")]);
      try {
        const res = await t.callback(body);
        assert.equal(res.status, 503, res.text);
        assert.equal(res.body.errorCode, "store_unavailable");
        assert.ok(Number(res.headers["retry-after"]) >= 1, `Retry-After: ${String(res.headers["retry-after"])}`);
        assert.equal(await ordersFor(t, token), 0);
        assert.equal(await stockOf(t, "TEA-A"), STOCK);
      } finally {
        await clearFaults();
      }
      const later = await t.callback(body);
      assert.equal(later.status, 201, later.text);
      assert.equal(await ordersFor(t, token), 1);
    });
  }
});
