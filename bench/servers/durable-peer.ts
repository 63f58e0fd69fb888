// The durable peer: what a user would write by hand instead of orderbridge — the reference handler
// (Subscribe Pro's Node example, bench/servers/reference.ts: express.json(), the Sp-Hmac check over
// JSON.stringify(req.body)) plus one INSERT of the order into better-sqlite3 in WAL mode, committed
// before the answer, with SQLITE_SYNCHRONOUS (FULL by default: the commit is on disk first; NORMAL:
// it may be lost on a power cut). Its insert is synchronous, as better-sqlite3's API is: every
// commit (and at FULL its fsync) blocks the event loop. It has no idempotency (a retry inserts
// again), no schema validation, no access log, no metrics and no security headers.
import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import express from "express";
import { FIXED_ANSWER } from "./fixed-answer.js";
import { exampleAuthValidate, serve } from "./serve.js";

const SHARED_SECRET = process.env["SP_HMAC_SECRET"] ?? "";
const DATA_DIR = process.env["DATA_DIR"] ?? "";
const SYNCHRONOUS = process.env["SQLITE_SYNCHRONOUS"] === "NORMAL" ? "NORMAL" : "FULL";
if (SHARED_SECRET === "" || DATA_DIR === "") {
  console.error("durable-peer: SP_HMAC_SECRET and DATA_DIR are required");
  process.exit(78);
}

fs.mkdirSync(DATA_DIR, { recursive: true });
const db = new BetterSqlite3(path.join(DATA_DIR, "orders.sqlite"));
db.pragma("journal_mode = WAL");
db.pragma(`synchronous = ${SYNCHRONOUS}`);
db.exec("create table if not exists orders (id integer primary key, sales_order_token text, body text not null, created_at integer not null)");
const insert = db.prepare("insert into orders (sales_order_token, body, created_at) values (?, ?, ?)");
const answer = JSON.parse(FIXED_ANSWER) as unknown;

const authValidate = exampleAuthValidate(SHARED_SECRET);

const router = express.Router();
router.post("/", authValidate, (req, res) => {
  const body = req.body as { salesOrderToken?: unknown };
  insert.run(typeof body.salesOrderToken === "string" ? body.salesOrderToken : null, JSON.stringify(req.body), Date.now());
  res.status(201).json(answer);
});

const app = express();
app.use(express.json());
app.use("/callbacks/subscribe-pro/order", router);

serve(app, () => db.close());
