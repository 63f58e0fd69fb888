/** Row types of every table, for Kysely. Times are epoch milliseconds; money is integer minor units. */

export interface SpCallbackRow {
  idempotency_key: string;
  body_hash: string;
  /** processing → done (201/202, final) | retryable (409/503/500: the next request processes afresh). */
  state: "processing" | "done" | "retryable";
  attempt_id: string;
  lease_until: number;
  status: number | null;
  response_body: string | null;
  order_number: string | null;
  request_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface LocalOrderRow {
  id: number;
  order_number: string;
  idempotency_key: string;
  source: string;
  source_order_id: string | null;
  customer_email: string;
  source_customer_id: string | null;
  platform_customer_id: string | null;
  currency: string;
  status: string;
  state: string;
  subtotal: number;
  shipping_total: number;
  tax_total: number;
  discount_total: number;
  total: number;
  shipping_method_code: string | null;
  coupon_codes: string;
  billing_address: string | null;
  shipping_address: string | null;
  created_at: number;
}

export interface LocalOrderItemRow {
  id: number;
  order_id: number;
  line_no: number;
  line_ref: string;
  sku: string;
  name: string;
  description: string | null;
  quantity: number;
  requires_shipping: number;
  unit_price: number;
  shipping_total: number;
  tax_total: number;
  discount_total: number;
  line_total: number;
  subscription_id: string | null;
}

export interface LocalStockRow {
  sku: string;
  available: number;
}

export interface CounterRow {
  name: string;
  value: number;
}

export interface Database {
  sp_callbacks: SpCallbackRow;
  local_orders: LocalOrderRow;
  local_order_items: LocalOrderItemRow;
  local_stock: LocalStockRow;
  counters: CounterRow;
}
