// PostgreSQL: one and two orderbridge instances on one schema.

import { describe, measure, spOrderRequests, type Measurement } from "../lib/load.js";
import { newSchema } from "../lib/postgres.js";
import { pinLoadGenerator, startServer, stopServer, unpin, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { DATABASE_URL, log, ROUNDS } from "../lib/settings.js";
import { dataDir, orderbridgeEnv, smokeTest } from "../lib/targets.js";

export async function runPgScale(results: Results): Promise<void> {
  const schema = newSchema("scale");
  const env = (name: string): Record<string, string> => orderbridgeEnv({ DATA_DIR: dataDir(name), DATABASE_URL, DATABASE_SCHEMA: schema });
  let a: Server | undefined;
  let b: Server | undefined;
  // The load generator on a core of its own (taskset), so that what the second instance adds is not
  // hidden by the load generator's share of the same cores.
  const pin = pinLoadGenerator();
  results.scalePinning = pin === undefined ? undefined : { loadGenerator: pin.loadGenerator, servers: pin.servers };
  if (pin !== undefined) log(`pg-scale: load generator pinned to CPU ${pin.loadGenerator}, the instances to CPU ${pin.servers}`);
  try {
    a = await startServer("ob-pg-a", ["dist/main.js"], env("pg-a"), undefined, pin?.servers);
    b = await startServer("ob-pg-b", ["dist/main.js"], env("pg-b"), undefined, pin?.servers);
    await smokeTest(a);
    await smokeTest(b);
    const scale = { one: [] as Measurement[], two: [] as Measurement[] };
    results.scale = scale;
    for (let round = 1; round <= ROUNDS; round++) {
      // (a) one instance takes all 50 connections (the other stays idle); (b) 25 connections each.
      const one = await measure([a], spOrderRequests);
      scale.one.push(one);
      log(`round ${round}/${ROUNDS} pg 1 instance    ${describe(one)}`);
      const two = await measure([a, b], spOrderRequests);
      scale.two.push(two);
      log(`round ${round}/${ROUNDS} pg 2 instances   ${describe(two)}`);
    }
  } finally {
    await stopServer(a);
    await stopServer(b);
    if (pin !== undefined) unpin(pin.all);
  }
}
