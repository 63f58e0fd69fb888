// The reference: the order callback handler as Subscribe Pro's own Node example writes it
// (docs.subscribepro.com, "Order Callback - NodeJS Example"): express.json() parses the body, an
// authValidate middleware computes the HMAC-SHA256 of JSON.stringify(req.body) with the shared secret
// and compares it with `===` to the `Sp-Hmac` header (403 on a mismatch), and the handler answers a
// fixed order as JSON, here with 201 (the check: exampleAuthValidate in serve.ts). Nothing is persisted. The example's two console.log lines per
// request (placeholders for placing the order) are left out, which only makes the yardstick faster.
// Its flaws are the example's and kept on purpose: the signature is checked over re-serialised JSON,
// not over the bytes received, and `===` is not a constant-time comparison.
import express from "express";
import { FIXED_ANSWER } from "./fixed-answer.js";
import { exampleAuthValidate, serve } from "./serve.js";

const SHARED_SECRET = process.env["SP_HMAC_SECRET"] ?? "";
if (SHARED_SECRET === "") {
  console.error("reference: SP_HMAC_SECRET is required");
  process.exit(78);
}

const authValidate = exampleAuthValidate(SHARED_SECRET);

const router = express.Router();
// The order it answers: a fixed one the size and shape of a real answer (orderbridge's 201 for the
// benchmark's order), the same the other yardsticks send (fixed-answer.ts).
const order = JSON.parse(FIXED_ANSWER) as unknown;
router.post("/", authValidate, (_req, res) => {
  res.status(201).json(order);
});

const app = express();
app.use(express.json());
app.use("/callbacks/subscribe-pro/order", router);

serve(app);
