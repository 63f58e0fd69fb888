/**
 * The built-in sample bodies of `orderbridge send` (src/cli/send.ts). A TypeScript module rather than
 * JSON files, so the samples are part of the build (tsc does not copy JSON into dist/).
 *
 * The bodies are copies of the test fixtures: the Subscribe Pro callback example of the spec (§7,
 * test/fixtures/subscribe-pro/example-request.json) and the Recharge payloads of both API versions
 * (test/fixtures/recharge/<version>/*.json). test/integration/cli-send.test.ts checks they stay
 * equal. The functions here return fresh deep copies with the fixtures' own ids; `send` gives each
 * invocation a new `salesOrderToken` / Recharge order id.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const SP_FIXTURE_NAMES = ["full-order", "partial", "unknown-sku", "minimal"] as const;
export type SpFixtureName = (typeof SP_FIXTURE_NAMES)[number];

export const RECHARGE_FIXTURE_NAMES = ["order-created", "order-processed", "order-updated", "prepaid", "queued", "checkout-processed"] as const;
export type RechargeFixtureName = (typeof RECHARGE_FIXTURE_NAMES)[number];
export type RechargeVersion = "2021-01" | "2021-11";

/** A SKU no catalog sells (the demo catalog included). */
export const UNKNOWN_SKU = "NOT-IN-CATALOG";

/** test/fixtures/subscribe-pro/example-request.json */
const SP_FULL_ORDER: JsonObject = {
  allowSomeFailedItems: true,
  customerId: "356001",
  customerEmail: "jane.doe@example.com",
  platformCustomerId: "C-000042",
  salesOrderToken: "5f1c2a9e7b3d4c6a8e0f1a2b3c4d5e6f",
  shippingMethodCode: "ups_ground",
  currency: "USD",
  couponCodes: [
    "SUB10"
  ],
  payment: {
    paymentToken: "pm_8kj123489afj123j4h",
    thirdPartyPaymentToken: "pm_1Nx0ExampleToken",
    paymentVaultCustomerToken: "cus_ExampleVault01",
    paymentProfileId: "416001",
    paymentProfileType: "external_vault",
    paymentMethodType: "creditcard",
    creditcardType: "visa",
    creditcardLastDigits: "1111",
    creditcardMonth: "2",
    creditcardYear: "2027"
  },
  billingAddress: {
    firstName: "Jane",
    lastName: "Doe",
    company: "",
    street1: "100 Main St",
    street2: "Apt 4",
    street3: "",
    city: "Springfield",
    region: "IL",
    postcode: "62701",
    country: "US",
    countryName: "United States",
    phone: "5555550100"
  },
  shippingAddress: {
    firstName: "Jane",
    lastName: "Doe",
    company: "",
    street1: "100 Main St",
    street2: "Apt 4",
    street3: "",
    city: "Springfield",
    region: "IL",
    postcode: "62701",
    country: "US",
    countryName: "United States",
    phone: "5555550100"
  },
  items: [
    {
      productSku: "RUBY-RED",
      shortDescription: "Ruby Red Black Tea - 2 oz.",
      qty: "4",
      requiresShipping: true,
      subscription: {
        id: "413245234",
        interval: "Every 4 Weeks",
        scheduleName: "Every 4 Weeks",
        reorderOrdinal: 3,
        nextOrderDate: "2024-05-01",
        userDefinedFields: {}
      }
    },
    {
      productSku: "EARL-GREY",
      shortDescription: "Earl Grey Tea - 4 oz.",
      qty: "1",
      requiresShipping: true,
      subscription: {
        id: "413245235",
        interval: "Every 4 Weeks",
        scheduleName: "Every 4 Weeks",
        reorderOrdinal: 3,
        nextOrderDate: "2024-05-01",
        userDefinedFields: {}
      }
    }
  ]
};

/** test/fixtures/recharge/2021-11/order-created.json */
const RC_2021_11_ORDER_CREATED: JsonObject = {
  order: {
    id: 512340001,
    address_id: 42171447,
    billing_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country_code: "US",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    charge: {
      id: 377749210,
      external_transaction_id: {
        payment_processor: "ch_3PExample0001"
      }
    },
    client_details: {
      browser_ip: null,
      user_agent: null
    },
    created_at: "2024-05-01T14:00:03+00:00",
    currency: "USD",
    customer: {
      id: 37657002,
      email: "jane.doe@example.com",
      external_customer_id: {
        ecommerce: "C-000042"
      },
      hash: "7e706455cbd13e40"
    },
    discounts: [],
    error: null,
    external_cart_token: null,
    external_order_id: {
      ecommerce: null
    },
    external_order_number: {
      ecommerce: null
    },
    hash: "42039120ee0e6cfa5c97805",
    is_prepaid: false,
    line_items: [
      {
        purchase_item_id: 63898947,
        purchase_item_type: "subscription",
        external_inventory_policy: "decrement_obeying_policy",
        external_product_id: {
          ecommerce: "P-RUBY-RED"
        },
        external_variant_id: {
          ecommerce: "V-RUBY-RED-2OZ"
        },
        grams: 454,
        images: {
          large: "",
          medium: "",
          original: "",
          small: ""
        },
        original_price: "10.00",
        properties: [
          {
            name: "grind",
            value: "loose"
          }
        ],
        quantity: 4,
        sku: "RUBY-RED",
        tax_due: "3.80",
        tax_lines: [
          {
            price: "3.80",
            rate: "0.0950",
            title: "IL State Tax",
            unit_price: "0.95"
          }
        ],
        taxable: true,
        taxable_amount: "40.00",
        title: "Ruby Red Black Tea",
        total_price: "43.80",
        unit_price: "10.00",
        unit_price_includes_tax: false,
        variant_title: "2 oz."
      },
      {
        purchase_item_id: 63898948,
        purchase_item_type: "subscription",
        external_inventory_policy: "decrement_obeying_policy",
        external_product_id: {
          ecommerce: "P-EARL-GREY"
        },
        external_variant_id: {
          ecommerce: "V-EARL-GREY-4OZ"
        },
        grams: 227,
        images: {
          large: "",
          medium: "",
          original: "",
          small: ""
        },
        original_price: "12.00",
        properties: [],
        quantity: 1,
        sku: "EARL-GREY",
        tax_due: "1.14",
        tax_lines: [
          {
            price: "1.14",
            rate: "0.0950",
            title: "IL State Tax",
            unit_price: "1.14"
          }
        ],
        taxable: true,
        taxable_amount: "12.00",
        title: "Earl Grey Black Tea",
        total_price: "13.14",
        unit_price: "12.00",
        unit_price_includes_tax: false,
        variant_title: "4 oz."
      }
    ],
    note: null,
    order_attributes: [],
    processed_at: "2024-05-01T14:00:02+00:00",
    scheduled_at: "2024-05-01T00:00:00+00:00",
    shipping_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country_code: "US",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    shipping_lines: [
      {
        code: "Standard",
        price: "4.90",
        taxable: false,
        tax_lines: [],
        title: "Standard"
      }
    ],
    status: "success",
    subtotal_price: "52.00",
    tags: "Subscription, Subscription Recurring Order",
    tax_lines: [
      {
        price: "4.94",
        rate: "0.0950",
        title: "IL State Tax"
      }
    ],
    taxable: true,
    total_discounts: "0.00",
    total_duties: "0.0",
    total_line_items_price: "52.00",
    total_price: "61.84",
    total_refunds: "0.00",
    total_tax: "4.94",
    total_weight_grams: 2043,
    type: "recurring",
    updated_at: "2024-05-01T14:00:03+00:00"
  }
};

/** test/fixtures/recharge/2021-11/order-created-prepaid-1.json */
const RC_2021_11_PREPAID_FIRST: JsonObject = orderWith(RC_2021_11_ORDER_CREATED, {
  "id": 512350001,
  "charge": {
    "id": 377750000,
    "external_transaction_id": {
      "payment_processor": "ch_3PExample0002"
    }
  },
  "hash": "a1f3c5e7b9d24680ace1357",
  "is_prepaid": true,
  "line_items": [
    {
      "purchase_item_id": 63898949,
      "purchase_item_type": "subscription",
      "external_inventory_policy": "decrement_obeying_policy",
      "external_product_id": {
        "ecommerce": "P-RUBY-RED"
      },
      "external_variant_id": {
        "ecommerce": "V-RUBY-RED-2OZ"
      },
      "grams": 454,
      "images": {
        "large": "",
        "medium": "",
        "original": "",
        "small": ""
      },
      "original_price": "10.00",
      "properties": [
        {
          "name": "grind",
          "value": "loose"
        }
      ],
      "quantity": 2,
      "sku": "RUBY-RED",
      "tax_due": "1.90",
      "tax_lines": [
        {
          "price": "1.90",
          "rate": "0.0950",
          "title": "IL State Tax",
          "unit_price": "0.95"
        }
      ],
      "taxable": true,
      "taxable_amount": "20.00",
      "title": "Ruby Red Black Tea",
      "total_price": "21.90",
      "unit_price": "10.00",
      "unit_price_includes_tax": false,
      "variant_title": "2 oz."
    }
  ],
  "subtotal_price": "20.00",
  "tags": "Prepaid, Subscription",
  "tax_lines": [
    {
      "price": "1.90",
      "rate": "0.0950",
      "title": "IL State Tax"
    }
  ],
  "total_line_items_price": "20.00",
  "total_price": "26.80",
  "total_tax": "1.90",
  "total_weight_grams": 908,
  "type": "checkout"
});
/** test/fixtures/recharge/2021-11/checkout-processed.json */
const RC_2021_11_CHECKOUT_PROCESSED: JsonObject = {
  checkout: {
    token: "efd5a6b12b984f439ec16ce2a00fb5c3",
    charge_id: 377749210,
    completed_at: "2024-05-01T14:00:03+00:00",
    created_at: "2024-05-01T13:58:40+00:00",
    updated_at: "2024-05-01T14:00:03+00:00",
    currency: "USD",
    email: "jane.doe@example.com",
    external_checkout_id: "cart_7f3c9a21",
    external_checkout_source: "custom",
    external_customer_id: {
      ecommerce: "C-000042",
      payment_processor: "cus_PExample01"
    },
    external_transaction_id: {
      payment_processor: "ch_3PExample0001"
    },
    line_items: [
      {
        external_product_id: {
          ecommerce: "P-RUBY-RED"
        },
        external_variant_id: {
          ecommerce: "V-RUBY-RED-2OZ"
        },
        purchase_item_type: "subscription",
        quantity: 4,
        requires_shipping: true,
        sku: "RUBY-RED",
        title: "Ruby Red Black Tea",
        unit_price: "10.00",
        total_price: "40.00"
      }
    ],
    note: null,
    order_attributes: [],
    payment_processor: "stripe",
    requires_shipping: true,
    subtotal_price: "40.00",
    taxable: true,
    taxes_included: false,
    total_price: "48.70",
    total_tax: "3.80"
  }
};

/** test/fixtures/recharge/2021-01/order-created.json */
const RC_2021_01_ORDER_CREATED: JsonObject = {
  order: {
    id: 512340001,
    address_id: 42171447,
    address_is_active: 1,
    billing_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country: "United States",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    charge_id: 377749210,
    charge_status: "SUCCESS",
    created_at: "2024-05-01T10:00:03",
    currency: "USD",
    customer_id: 37657002,
    email: "jane.doe@example.com",
    first_name: "Jane",
    last_name: "Doe",
    hash: "42039120ee0e6cfa5c97805",
    is_prepaid: 0,
    line_items: [
      {
        grams: 454,
        price: "10.00",
        product_title: "Ruby Red Black Tea",
        properties: [],
        quantity: 4,
        shopify_product_id: "P-RUBY-RED",
        shopify_variant_id: "V-RUBY-RED-2OZ",
        sku: "RUBY-RED",
        subscription_id: 63898947,
        tax_lines: [
          {
            price: "3.80",
            rate: "0.0950",
            title: "IL State Tax"
          }
        ],
        title: "Ruby Red Black Tea",
        variant_title: "2 oz."
      },
      {
        grams: 227,
        price: "12.00",
        product_title: "Earl Grey Black Tea",
        properties: [],
        quantity: 1,
        shopify_product_id: "P-EARL-GREY",
        shopify_variant_id: "V-EARL-GREY-4OZ",
        sku: "EARL-GREY",
        subscription_id: 63898948,
        tax_lines: [
          {
            price: "1.14",
            rate: "0.0950",
            title: "IL State Tax"
          }
        ],
        title: "Earl Grey Black Tea",
        variant_title: "4 oz."
      }
    ],
    note: null,
    note_attributes: [],
    payment_processor: "stripe",
    processed_at: "2024-05-01T10:00:02",
    scheduled_at: "2024-05-01T00:00:00",
    shipping_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country: "United States",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    shipping_date: "2024-05-01T00:00:00",
    shipping_lines: [
      {
        code: "Standard",
        price: "4.90",
        title: "Standard"
      }
    ],
    shopify_cart_token: null,
    shopify_customer_id: null,
    shopify_id: null,
    shopify_order_id: null,
    shopify_order_number: null,
    status: "SUCCESS",
    subtotal_price: "52.00",
    tags: "Subscription, Subscription Recurring Order",
    tax_lines: [
      {
        price: "4.94",
        rate: "0.0950",
        title: "IL State Tax"
      }
    ],
    total_discounts: "0.00",
    total_line_items_price: "52.00",
    total_price: "61.84",
    total_refunds: null,
    total_tax: "4.94",
    total_weight: 2043,
    transaction_id: "ch_3PExample0001",
    type: "RECURRING",
    updated_at: "2024-05-01T10:00:03"
  }
};

/** test/fixtures/recharge/2021-01/order-created-prepaid-1.json */
const RC_2021_01_PREPAID_FIRST: JsonObject = orderWith(RC_2021_01_ORDER_CREATED, {
  "id": 512350001,
  "charge_id": 377750000,
  "hash": "a1f3c5e7b9d24680ace1357",
  "is_prepaid": 1,
  "line_items": [
    {
      "grams": 454,
      "price": "10.00",
      "product_title": "Ruby Red Black Tea",
      "properties": [],
      "quantity": 2,
      "shopify_product_id": "P-RUBY-RED",
      "shopify_variant_id": "V-RUBY-RED-2OZ",
      "sku": "RUBY-RED",
      "subscription_id": 63898949,
      "tax_lines": [
        {
          "price": "1.90",
          "rate": "0.0950",
          "title": "IL State Tax"
        }
      ],
      "title": "Ruby Red Black Tea",
      "variant_title": "2 oz."
    }
  ],
  "subtotal_price": "20.00",
  "tags": "Prepaid, Subscription",
  "tax_lines": [
    {
      "price": "1.90",
      "rate": "0.0950",
      "title": "IL State Tax"
    }
  ],
  "total_line_items_price": "20.00",
  "total_price": "26.80",
  "total_tax": "1.90",
  "total_weight": 908,
  "transaction_id": "ch_3PExample0002",
  "type": "CHECKOUT"
});
/** test/fixtures/recharge/2021-01/checkout-processed.json */
const RC_2021_01_CHECKOUT_PROCESSED: JsonObject = {
  checkout: {
    applied_discount: null,
    billing_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country: "United States",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    buyer_accepts_marketing: false,
    charge_id: 377749210,
    completed_at: "2024-05-01T10:00:03",
    created_at: "2024-05-01T09:58:40",
    currency: "USD",
    discount_code: null,
    email: "jane.doe@example.com",
    external_checkout_id: "cart_7f3c9a21",
    external_checkout_source: "custom",
    line_items: [
      {
        charge_interval_frequency: 1,
        cutoff_day_of_month: null,
        cutoff_day_of_week: null,
        expire_after_specific_number_of_charges: null,
        order_interval_frequency: 1,
        order_interval_unit: "month",
        price: "10.00",
        product_id: "P-RUBY-RED",
        product_title: "Ruby Red Black Tea",
        properties: [],
        quantity: 4,
        requires_shipping: true,
        sku: "RUBY-RED",
        taxable: true,
        title: "Ruby Red Black Tea",
        variant_id: "V-RUBY-RED-2OZ",
        variant_title: "2 oz."
      }
    ],
    note: null,
    note_attributes: [],
    payment_processor: "stripe",
    payment_processor_customer_id: "cus_PExample01",
    payment_processor_transaction_id: "ch_3PExample0001",
    phone: "5555550100",
    requires_shipping: true,
    shipping_address: {
      address1: "100 Main St",
      address2: "Apt 4",
      city: "Springfield",
      company: null,
      country: "United States",
      first_name: "Jane",
      last_name: "Doe",
      phone: "5555550100",
      province: "Illinois",
      zip: "62701"
    },
    shipping_rate: {
      code: "Standard",
      price: "4.90",
      title: "Standard"
    },
    subtotal_price: "40.00",
    tax_lines: [
      {
        price: "3.80",
        rate: "0.0950",
        title: "IL State Tax"
      }
    ],
    taxes_included: false,
    token: "efd5a6b12b984f439ec16ce2a00fb5c3",
    total_price: "48.70",
    total_tax: "3.80",
    updated_at: "2024-05-01T10:00:03.412067"
  }
};

/** The README's smallest valid order for the demo catalog. */
const SP_MINIMAL: JsonObject = {
  customerId: "1234",
  customerEmail: "jane@example.com",
  platformCustomerId: "C-1",
  salesOrderToken: "test-0001",
  currency: "USD",
  shippingMethodCode: "ups_ground",
  payment: { paymentProfileId: "1" },
  shippingAddress: { firstName: "Jane", city: "Springfield", country: "US" },
  items: [{ productSku: "RUBY-RED", qty: "4", subscription: { id: "413245234" } }],
};

/** One known SKU and one the catalog does not sell, with allowSomeFailedItems: placed in part (202). */
const SP_PARTIAL: JsonObject = {
  ...SP_MINIMAL,
  allowSomeFailedItems: true,
  items: [
    { productSku: "RUBY-RED", qty: "2", subscription: { id: "413245234" } },
    { productSku: UNKNOWN_SKU, qty: "1", subscription: { id: "413245236" } },
  ],
};

/** Only a SKU the catalog does not sell: nothing can be ordered (409). */
const SP_UNKNOWN_SKU: JsonObject = {
  ...SP_MINIMAL,
  items: [{ productSku: UNKNOWN_SKU, qty: "1", subscription: { id: "413245236" } }],
};

const SP: Record<SpFixtureName, JsonObject> = {
  "full-order": SP_FULL_ORDER,
  partial: SP_PARTIAL,
  "unknown-sku": SP_UNKNOWN_SKU,
  minimal: SP_MINIMAL,
};

export function spFixture(name: SpFixtureName): JsonObject {
  return structuredClone(SP[name]);
}

/** `{order: {...base.order, ...patch}}`: the other order samples differ from a base in a few fields. */
function orderWith(base: JsonObject, patch: JsonObject): JsonObject {
  return { order: { ...(base["order"] as JsonObject), ...patch } };
}

const RECHARGE: Record<RechargeVersion, Record<RechargeFixtureName, { topic: string; body: JsonObject }>> = {
  "2021-11": {
    "order-created": { topic: "order/created", body: RC_2021_11_ORDER_CREATED },
    // order-processed-prepaid-2.json: a queued prepaid shipment that has now been processed.
    "order-processed": {
      topic: "order/processed",
      body: orderWith(RC_2021_11_PREPAID_FIRST, {
        id: 512350002,
        hash: "b2e4d6f8a0c13579bdf2468",
        processed_at: "2024-06-01T05:00:11+00:00",
        scheduled_at: "2024-06-01T00:00:00+00:00",
        updated_at: "2024-06-01T05:00:12+00:00",
      }),
    },
    // order-updated.json, but not yet synced (external_order_id null): the fixture file is the echo
    // of our own write-back, which with a fresh order id would read as placed by another system.
    "order-updated": { topic: "order/updated", body: orderWith(RC_2021_11_ORDER_CREATED, { updated_at: "2024-05-01T14:00:09+00:00" }) },
    prepaid: { topic: "order/created", body: RC_2021_11_PREPAID_FIRST },
    // order-queued.json
    queued: {
      topic: "order/created",
      body: orderWith(RC_2021_11_ORDER_CREATED, {
        id: 512360001,
        charge: { id: 377760000, external_transaction_id: { payment_processor: null } },
        created_at: "2024-05-01T14:05:00+00:00",
        hash: "5b8c1e7d40a29f36c1d0e84",
        processed_at: null,
        scheduled_at: "2024-06-01T00:00:00+00:00",
        status: "queued",
        updated_at: "2024-05-01T14:05:00+00:00",
      }),
    },
    "checkout-processed": { topic: "checkout/processed", body: RC_2021_11_CHECKOUT_PROCESSED },
  },
  "2021-01": {
    "order-created": { topic: "order/created", body: RC_2021_01_ORDER_CREATED },
    "order-processed": {
      topic: "order/processed",
      body: orderWith(RC_2021_01_PREPAID_FIRST, {
        id: 512350002,
        hash: "b2e4d6f8a0c13579bdf2468",
        processed_at: "2024-06-01T05:00:11",
        scheduled_at: "2024-06-01T00:00:00",
        shipping_date: "2024-06-01T00:00:00",
        updated_at: "2024-06-01T05:00:12",
      }),
    },
    "order-updated": { topic: "order/updated", body: orderWith(RC_2021_01_ORDER_CREATED, { updated_at: "2024-05-01T10:00:09" }) },
    prepaid: { topic: "order/created", body: RC_2021_01_PREPAID_FIRST },
    queued: {
      topic: "order/created",
      body: orderWith(RC_2021_01_ORDER_CREATED, {
        id: 512360001,
        charge_id: 377760000,
        charge_status: "QUEUED",
        created_at: "2024-05-01T10:05:00",
        hash: "5b8c1e7d40a29f36c1d0e84",
        processed_at: null,
        scheduled_at: "2024-06-01T00:00:00",
        shipping_date: "2024-06-01T00:00:00",
        status: "QUEUED",
        transaction_id: null,
        updated_at: "2024-05-01T10:05:00",
      }),
    },
    "checkout-processed": { topic: "checkout/processed", body: RC_2021_01_CHECKOUT_PROCESSED },
  },
};

/** A Recharge sample in one API version, with the topic it is sent under by default. */
export function rechargeFixture(name: RechargeFixtureName, version: RechargeVersion): { topic: string; body: JsonObject } {
  const f = RECHARGE[version][name];
  return { topic: f.topic, body: structuredClone(f.body) };
}
