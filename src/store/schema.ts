/** Row types of every table, for Kysely. Times are epoch milliseconds; money is integer minor units. */

export interface SpCallbackRow {
  idempotency_key: string;
  body_hash: string;
  /**
   * processing → done (201/202, final) | retryable (409/503/500 where nothing was placed: the next
   * request processes afresh, with any body) | uncertain (the platform was asked and may have
   * placed the order: the next request with the same body processes afresh, another body is refused)
   * | pruned (a done row whose stored answer was dropped at retention, RETENTION_DAYS: the key stays
   * bound to its body; the same body is answered again through the platform's idempotency).
   */
  state: "processing" | "done" | "retryable" | "uncertain" | "pruned";
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
  /** JSON: shipping lines, discounts, note, tags and attributes the source sent (null for none). */
  details: string | null;
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
  /** JSON array of {name, value} (null for none). */
  properties: string | null;
}

export interface LocalStockRow {
  sku: string;
  available: number;
}

export interface CounterRow {
  name: string;
  value: number;
}

export type JobState = "pending" | "running" | "done" | "skipped" | "dead";

/**
 * One unit of durable work: placing a received Recharge event (its row in `recharge_inbox`, of the
 * same id) or an outbox call (a write-back). pending → running → done | skipped (final), or →
 * pending again with a later run_at (retry), or → dead (attempts exhausted, or a failure no retry
 * can fix). What a job is about is its payload (JSON, read by its task: src/jobs/tasks.ts).
 */
export interface JobRow {
  id: string;
  kind: string;
  /** Which worker loops claim it: "inbox" (received webhooks) or "writeback" (Recharge API calls). */
  lane: "inbox" | "writeback";
  /** Content key that makes queueing the same work twice a no-op (unique). */
  dedupe_key: string | null;
  /** What the job is about (a Recharge order id): admin filters and the sweep look it up. */
  resource_id: string | null;
  payload: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: number;
  locked_by: string | null;
  lease_until: number | null;
  last_error: string | null;
  outcome: string | null;
  correlation_id: string | null;
  /** W3C traceparent of the span that queued the job (tracing on); null otherwise. */
  trace_context: string | null;
  created_at: number;
  updated_at: number;
}

/**
 * A Recharge webhook as received (or an order the sweep found), owned by the receiver
 * (src/recharge/receive.ts; migration 0015_recharge_inbox). A handled one is processed by the job
 * of the same id; an ignored one (a topic not handled, Recharge's empty test body) is recorded
 * here only. The unique keys make a re-delivery a duplicate.
 */
export interface RechargeInboxRow {
  id: string;
  /** "webhook" (received) or "sweep" (found by the sweep, no webhook having placed it). */
  source: "webhook" | "sweep";
  topic: string | null;
  /** Where the topic was read: path, header, payload; null when nowhere (or found by the sweep). */
  topic_source: string | null;
  /** Content key (topic, resource id, updated_at) that makes a re-delivery a duplicate (unique). */
  dedupe_key: string | null;
  /** SHA-256 of topic and raw body (unique): a byte-identical re-delivery is a duplicate. */
  body_hash: string | null;
  resource_id: string | null;
  api_version: string | null;
  /** The raw body (UTF-8 text), exactly as it came; null for an empty one. */
  body: string | null;
  /** Why it is recorded without processing; null when the job of the same id processes it. */
  ignored_reason: string | null;
  correlation_id: string | null;
  received_at: number;
}

export interface RechargeOrderRow {
  recharge_order_id: string;
  platform: string;
  platform_order_id: string;
  order_number: string;
  charge_id: string | null;
  is_prepaid: number;
  api_version: string;
  event_id: string;
  placed_at: number;
}

export interface LocalClearedCartRow {
  cart_id: string;
  source: string;
  customer_email: string | null;
  cleared_at: number;
}

export interface RateLimitRow {
  name: string;
  tat: number;
}

/** Facts about the database itself: `database_id` (SQLite: checked against DATA_DIR/database-id at start). */
export interface MetaRow {
  key: string;
  value: string;
}

/** One run of a job (migration 0012_job_attempts): kept beside the job, pruned as it is. Times in ms since the epoch. */
export interface JobAttemptRow {
  id: string;
  job_id: string;
  /** The attempt it was, from 1 (a run that spends no attempt — a rate-limit wait — has the number of the next one). */
  attempt: number;
  /** done, skipped, retry (failed, to run again), dead, deferred (waited for a rate-limit slot: no attempt spent), released (given back at shutdown). */
  outcome: JobAttemptOutcome;
  /** The handler's outcome line (done, skipped) or the failure (the job's last error then). */
  detail: string | null;
  /** The HTTP status of the remote call the run made (Recharge, the platform), when it made one. */
  remote_status: number | null;
  /** When the job runs again (retry, deferred); null when it does not. */
  next_run_at: number | null;
  worker_id: string;
  started_at: number;
  ended_at: number;
}

/** One Subscribe Pro callback as received and answered (migration 0013_callback_log). Times in ms since the epoch. */
export interface SpCallbackLogRow {
  id: string;
  received_at: number;
  request_id: string;
  /** 1: the request passed Sp-Hmac / the allowlist (kept whole); 0: refused before (kept as a bounded sample). */
  authenticated: number;
  sales_order_token: string | null;
  customer_email: string | null;
  status: number;
  order_number: string | null;
  /** The answer's errorCode, or the answer's class for an order answer ("created", "accepted", "failed"). */
  error_code: string | null;
  /** JSON: the answer's errorMessage and errorItems (sku and message), as answered. */
  reasons: string | null;
  replayed: number;
  duration_ms: number;
  client_address: string | null;
  /** The request body as JSON with payment values and other sensitive keys masked; null when it was not JSON or not authenticated. */
  body: string | null;
  body_bytes: number;
}

/** What an operator did in the console (migration 0014_console_actions). */
export interface ConsoleActionRow {
  id: string;
  at: number;
  /** The console session (its id, not its cookie). */
  session_id: string;
  /** sign-in, sign-out, replay, bulk-replay, resolve. */
  action: string;
  /** What it was done to (an event id, a filter), or null. */
  target: string | null;
  /** What came of it, one line. */
  detail: string | null;
  client_address: string | null;
}

export type JobAttemptOutcome = "done" | "skipped" | "retry" | "dead" | "deferred" | "released";

/** A periodic Recharge task's lease and progress (migration 0011_recharge_sweep). Times in ms since the epoch. */
export interface RechargeSweepStateRow {
  /** "orders" (the sweep) or "webhooks" (the subscription check). */
  name: string;
  holder: string | null;
  lease_until: number | null;
  /** Orders updated at or after this are looked at by the next run. */
  watermark: number | null;
  /** The run in progress: its window (updated_at_min, updated_at_max) and the next page's cursor. */
  run_from: number | null;
  run_until: number | null;
  page_cursor: string | null;
  last_finished_at: number | null;
  /** JSON: what the last finished run found. */
  last_result: string | null;
  updated_at: number;
}

export interface Database {
  sp_callbacks: SpCallbackRow;
  local_orders: LocalOrderRow;
  local_order_items: LocalOrderItemRow;
  local_stock: LocalStockRow;
  counters: CounterRow;
  jobs: JobRow;
  recharge_inbox: RechargeInboxRow;
  recharge_orders: RechargeOrderRow;
  local_cleared_carts: LocalClearedCartRow;
  rate_limits: RateLimitRow;
  orderbridge_meta: MetaRow;
  recharge_sweep_state: RechargeSweepStateRow;
  job_attempts: JobAttemptRow;
  sp_callback_log: SpCallbackLogRow;
  console_actions: ConsoleActionRow;
}
