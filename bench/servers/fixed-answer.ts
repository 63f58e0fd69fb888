// The fixed answer of the yardsticks (ceiling, reference, durable peer, front door): the size and shape of a real one
// (orderbridge's 201 for the benchmark's order), so every target sends about the same bytes back.
export const FIXED_ANSWER = JSON.stringify({
  orderNumber: "OB-100000",
  orderDetails: {
    customerId: "1",
    customerEmail: "a@example.com",
    platformCustomerId: "P1",
    platformOrderId: "100000",
    orderNumber: "OB-100000",
    salesOrderToken: "bench",
    orderStatus: "placed",
    orderState: "open",
    orderDateTime: "2026-01-01T00:00:00Z",
    currency: "USD",
    shippingTotal: "3.0000",
    taxTotal: "1.8000",
    total: "24.8000",
    shippingAddress: { city: "X", country: "US" },
    items: [
      {
        platformOrderItemId: "1",
        productSku: "RUBY-RED",
        productName: "Ruby Red Black Tea",
        qty: "2",
        requiresShipping: true,
        unitPrice: "10.0000",
        shippingTotal: "3.0000",
        taxTotal: "1.8000",
        lineTotal: "24.8000",
        subscriptionId: "s1",
      },
    ],
  },
  errorItems: [],
});
