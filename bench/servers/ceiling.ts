// The ceiling: a bare Express 5 server that reads the raw body and answers a fixed 201 JSON.
// Nothing is parsed, verified or stored, so no order callback handler on Express can be faster.
import express from "express";

// A fixed answer the size and shape of a real one (orderbridge's 201 for the benchmark's order),
// so every target sends about the same bytes back.
const ANSWER = JSON.stringify({
  orderNumber: "OB-100000",
  orderDetails: {
    customerId: "1", customerEmail: "a@example.com", platformCustomerId: "P1", platformOrderId: "100000",
    orderNumber: "OB-100000", salesOrderToken: "bench", orderStatus: "placed", orderState: "open",
    orderDateTime: "2026-01-01T00:00:00Z", currency: "USD", shippingTotal: "3.0000", taxTotal: "1.8000", total: "24.8000",
    shippingAddress: { city: "X", country: "US" },
    items: [
      {
        platformOrderItemId: "1", productSku: "RUBY-RED", productName: "Ruby Red Black Tea", qty: "2", requiresShipping: true,
        unitPrice: "10.0000", shippingTotal: "3.0000", taxTotal: "1.8000", lineTotal: "24.8000", subscriptionId: "s1",
      },
    ],
  },
  errorItems: [],
});

const app = express();
app.disable("x-powered-by");
// Every content type: the callback is application/json, express.raw() alone only takes octet-stream.
app.post("/callbacks/subscribe-pro/order", express.raw({ type: () => true, limit: "1mb" }), (_req, res) => {
  res.status(201).type("application/json").send(ANSWER);
});

const port = Number(process.env["PORT"] ?? "0");
const server = app.listen(port, "127.0.0.1", () => {
  const address = server.address();
  const actual = typeof address === "object" && address !== null ? address.port : port;
  console.log(`listening on port ${actual}`);
});
server.keepAliveTimeout = 65_000;
process.on("SIGTERM", () => server.close(() => process.exit(0)));
