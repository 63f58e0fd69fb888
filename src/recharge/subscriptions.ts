/**
 * Recharge webhook subscriptions, pure: which registrations orderbridge wants (one per topic, an
 * explicit version, at PUBLIC_URL), which of the store's registrations are its own, how they
 * compare, and what `sync` does to make them agree. The I/O is in src/recharge/webhooks.ts.
 *
 * A registration is orderbridge's when its address's path is one of orderbridge's Recharge routes
 * (`/webhooks/recharge`, `/webhooks/recharge/<topic>`), on any host: an address of an earlier
 * PUBLIC_URL is then corrected, not left to fail until Recharge deletes it. Every other
 * registration (another app's, whatever its topic) is never changed or deleted.
 */
import type { HandledTopic, RechargeApiVersion } from "./order.js";

/** A registration as `GET /webhooks` lists it. */
export interface RemoteWebhook {
  id: string;
  address: string;
  topic: string;
  /** Absent: the store's default version renders its payloads. */
  version: string | undefined;
}

export interface WantedWebhooks {
  /** PUBLIC_URL, e.g. "https://orders.example.com" or "https://example.com/orderbridge". */
  publicUrl: string;
  topics: readonly HandledTopic[];
  version: RechargeApiVersion;
}

/** duplicate: served, but by more than one registration of ours (each event comes once per registration). */
export type TopicState = "ok" | "missing" | "wrong_version" | "wrong_address" | "duplicate";
export const TOPIC_STATES: readonly TopicState[] = ["ok", "missing", "wrong_version", "wrong_address", "duplicate"];

export interface TopicStatus {
  topic: HandledTopic;
  state: TopicState;
  /** The registration that serves (or, corrected, will serve) the topic. */
  webhook?: RemoteWebhook;
  /** What is wrong, in words (absent when ok). */
  problem?: string;
  /** Further registrations of ours for the topic: each delivery would come once per registration. */
  duplicates: RemoteWebhook[];
}

export type SyncAction =
  | { kind: "create"; topic: HandledTopic; address: string; version: RechargeApiVersion }
  | { kind: "update"; id: string; topic: HandledTopic; address: string; version: RechargeApiVersion; was: { address: string; version: string | undefined } }
  | { kind: "delete"; id: string; topic: HandledTopic; address: string; reason: string };

export interface SubscriptionReport {
  ok: boolean;
  topics: TopicStatus[];
  /** What `sync` does to make every topic ok (empty when ok). */
  actions: SyncAction[];
  /** Registrations that are not orderbridge's (other apps'), left alone. */
  others: number;
}

const base = (publicUrl: string): string => publicUrl.replace(/\/+$/, "");

/** The address orderbridge registers for a topic: its per-topic URL (the topic in the path). */
export function webhookAddress(publicUrl: string, topic: HandledTopic): string {
  return `${base(publicUrl)}/webhooks/recharge/${topic}`;
}

/** The path of an address, "" when it is no URL. */
function pathOf(address: string): string | undefined {
  try {
    return new URL(address).pathname.replace(/\/+$/, "");
  } catch {
    return undefined;
  }
}

const ROUTE = /\/webhooks\/recharge(?:\/([a-z]+)(?:[/_-]([a-z_]+))?)?$/i;

/** The topic a registration's address names (`/webhooks/recharge/order/created`, `order-created`), null for the one-URL route, undefined when it is not orderbridge's. */
function routeTopic(address: string): string | null | undefined {
  const p = pathOf(address);
  if (p === undefined) return undefined;
  const m = ROUTE.exec(p);
  if (m === null) return undefined;
  if (m[1] === undefined) return null;
  return m[2] === undefined ? undefined : `${m[1].toLowerCase()}/${m[2].toLowerCase()}`;
}

/** Whether a registration is orderbridge's: its address is one of orderbridge's Recharge routes, for its own topic or for every topic. */
export function isOurs(w: RemoteWebhook): boolean {
  const t = routeTopic(w.address);
  return t === null || t === w.topic;
}

/**
 * Whether an address delivers a topic to this orderbridge: its per-topic URL (with `/` or `-`), or
 * its one URL for every topic, under PUBLIC_URL.
 */
function servesHere(address: string, publicUrl: string, topic: string): boolean {
  const b = base(publicUrl);
  if (!address.startsWith(`${b}/webhooks/recharge`)) return false;
  const rest = address.slice(b.length).replace(/\/+$/, "");
  return rest === "/webhooks/recharge" || rest === `/webhooks/recharge/${topic}` || rest === `/webhooks/recharge/${topic.replace("/", "-")}`;
}

/**
 * The store's registrations against what orderbridge wants. Per topic: one of ours at PUBLIC_URL
 * with the wanted version is ok; else one of ours (the oldest) is corrected in place; else one is
 * created. Further registrations of ours for a wanted topic are deleted (each would deliver every
 * event again). Registrations of ours for a topic no longer wanted, and every other one, stay.
 */
export function compareSubscriptions(remote: readonly RemoteWebhook[], wanted: WantedWebhooks): SubscriptionReport {
  const sorted = [...remote].sort((a, b) => compareIds(a.id, b.id));
  const topics: TopicStatus[] = [];
  const actions: SyncAction[] = [];
  for (const topic of wanted.topics) {
    const ours = sorted.filter((w) => w.topic === topic && isOurs(w));
    const good = ours.filter((w) => w.version === wanted.version && servesHere(w.address, wanted.publicUrl, topic));
    const address = webhookAddress(wanted.publicUrl, topic);
    const keep = good[0] ?? ours[0];
    const duplicates = ours.filter((w) => w !== keep);
    for (const d of duplicates)
      actions.push({ kind: "delete", id: d.id, topic, address: d.address, reason: `a second registration of ${topic} (each event would be delivered once per registration)` });
    if (keep === undefined) {
      topics.push({ topic, state: "missing", problem: `no webhook for ${topic} at ${base(wanted.publicUrl)}`, duplicates });
      actions.push({ kind: "create", topic, address, version: wanted.version });
      continue;
    }
    if (keep === good[0]) {
      topics.push(
        duplicates.length === 0
          ? { topic, state: "ok", webhook: keep, duplicates }
          : {
              topic,
              state: "duplicate",
              webhook: keep,
              problem: `${duplicates.length + 1} webhooks of ours for ${topic}: ${[keep, ...duplicates].map((w) => w.id).join(", ")}`,
              duplicates,
            },
      );
      continue;
    }
    const wrongAddress = !servesHere(keep.address, wanted.publicUrl, topic);
    const problem = wrongAddress
      ? `webhook ${keep.id} for ${topic} sends to ${keep.address}, not to ${address}`
      : `webhook ${keep.id} for ${topic} has version ${keep.version ?? "none (the store's default)"}, not ${wanted.version}`;
    topics.push({ topic, state: wrongAddress ? "wrong_address" : "wrong_version", webhook: keep, problem, duplicates });
    actions.push({
      kind: "update",
      id: keep.id,
      topic,
      address: wrongAddress ? address : keep.address,
      version: wanted.version,
      was: { address: keep.address, version: keep.version },
    });
  }
  const others = remote.filter((w) => !isOurs(w)).length;
  // Creations and corrections first, deletions of duplicates after: a topic is never left without one.
  const order = { create: 0, update: 1, delete: 2 } as const;
  actions.sort((a, b) => order[a.kind] - order[b.kind]);
  return { ok: topics.every((t) => t.state === "ok"), topics, actions, others };
}

function compareIds(a: string, b: string): number {
  const [x, y] = [Number(a), Number(b)];
  return Number.isFinite(x) && Number.isFinite(y) ? x - y : a.localeCompare(b);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `GET /webhooks`'s answer → its registrations and the next page's cursor (liberal: `next_cursor` or `next`). */
export function readWebhooksPage(data: unknown): { webhooks: RemoteWebhook[]; next: string | undefined } | undefined {
  if (!isObj(data) || !Array.isArray(data["webhooks"])) return undefined;
  const webhooks = data["webhooks"].filter(isObj).flatMap((w): RemoteWebhook[] => {
    const id = w["id"];
    if ((typeof id !== "number" && typeof id !== "string") || typeof w["address"] !== "string" || typeof w["topic"] !== "string") return [];
    return [
      { id: String(id), address: w["address"], topic: w["topic"].toLowerCase(), version: typeof w["version"] === "string" && w["version"] !== "" ? w["version"] : undefined },
    ];
  });
  return { webhooks, next: nextCursor(data) };
}

/** A list answer's next-page cursor: `next_cursor` (the reference's words) or `next` (its orders example). */
export function nextCursor(data: Obj): string | undefined {
  for (const key of ["next_cursor", "next"]) {
    const v = data[key];
    if (typeof v === "string" && v !== "") return v;
  }
  return undefined;
}
