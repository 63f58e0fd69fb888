// What the parts measured, for the report.

import type { BacklogResult } from "../parts/backlog.js";
import type { ConnectionsResult } from "../parts/connections.js";
import type { RetentionResult } from "../parts/retention.js";
import type { Measurement } from "./load.js";
import type { CallbackTarget } from "./settings.js";

export interface Results {
  pgSkip: string | undefined;
  pgVersion: string | undefined;
  callback: Map<CallbackTarget, Measurement[]>;
  connections: ConnectionsResult | undefined;
  rechargeAck: Measurement | undefined;
  scale: { one: Measurement[]; two: Measurement[] } | undefined;
  /** The cores the scale-out part pinned the load generator and the instances to (taskset), when it could. */
  scalePinning?: { loadGenerator: string; servers: string } | undefined;
  backlog: BacklogResult | undefined;
  placement: { on: number[]; off: number[] } | undefined;
  retention: RetentionResult | undefined;
  skipped: string[];
  /** Idle share of the machine's CPU in the second before the run, and the load averages then. */
  idleBefore: number;
  loadAvgBefore: number[];
}
