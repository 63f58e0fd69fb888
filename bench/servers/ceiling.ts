// The ceiling: a bare Express 5 server that reads the raw body and answers a fixed 201 JSON.
// Nothing is parsed, verified or stored, so no order callback handler on Express can be faster.
import express from "express";
import { FIXED_ANSWER as ANSWER } from "./fixed-answer.js";
import { serve } from "./serve.js";

const app = express();
app.disable("x-powered-by");
// Every content type: the callback is application/json, express.raw() alone only takes octet-stream.
app.post("/callbacks/subscribe-pro/order", express.raw({ type: () => true, limit: "1mb" }), (_req, res) => {
  res.status(201).type("application/json").send(ANSWER);
});

serve(app);
