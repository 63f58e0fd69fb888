// The retry policy moved to src/outbound/retry-policy.ts (issue #15, item 3). This re-export keeps the
// job code's imports working until the store/jobs work moves them (TODO(issue #15): then delete it).
export * from "../outbound/retry-policy.js";
