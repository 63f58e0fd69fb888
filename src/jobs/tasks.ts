import type { JobRow, Lane, NewJob } from "../store/jobs.js";
import { JobError, type JobContext, type JobHandler, type JobResult } from "./worker.js";

/**
 * A kind of job with a typed payload. `decode` turns what a row holds back into the payload (and
 * refuses a row that does not hold one: such a job goes dead at once, saying why, instead of failing
 * later on a cast); `job()` builds the row to enqueue, so a payload is written only in the shape
 * its task reads; `handle(run)` is the worker's handler, given the decoded payload. Tasks are
 * defined where their payload is (module level); the work is bound where its dependencies are
 * (the composition root's handlers).
 */
export interface Task<P> {
  readonly kind: string;
  readonly lane: Lane;
  /** The row's payload as the task's type; throws a PayloadError when it is not one. */
  decode(row: JobRow): P;
  /** The row of a new job of this task (its payload stored as JSON). */
  job(payload: P, o: TaskJobOptions): NewJob;
  /** The worker's handler of this task's jobs: the row decoded, then `run`. */
  handle(run: (payload: P, job: JobRow, ctx: JobContext) => Promise<JobResult>): TaskHandler;
}

/** A task's handler, as the worker takes it (handlersOf). */
export interface TaskHandler {
  readonly kind: string;
  readonly run: JobHandler;
}

export interface TaskJobOptions {
  maxAttempts: number;
  /** A second job with the same key is not added (enqueue answers the first). */
  dedupeKey?: string | null;
  /** What the job is about (e.g. a Recharge order id): admin filters and the sweep look it up. */
  resourceId?: string | null;
  runAt?: number;
  correlationId?: string | null;
}

/** A row whose payload is not what its task reads (or names what is not there). */
export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadError";
  }
}

type Obj = Record<string, unknown>;

/** Reading a payload's fields, each failure naming the field. */
export const field = {
  obj(v: unknown, what: string): Obj {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new PayloadError(`${what} is not an object`);
    return v as Obj;
  },
  string(o: Obj, name: string): string {
    const v = o[name];
    if (typeof v !== "string" || v === "") throw new PayloadError(`${name} is not a non-empty string`);
    return v;
  },
  optionalString(o: Obj, name: string): string | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new PayloadError(`${name} is not a string`);
    return v;
  },
  oneOf<T extends string>(o: Obj, name: string, values: readonly T[]): T {
    const v = o[name];
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) throw new PayloadError(`${name} is not one of ${values.join(", ")}`);
    return v as T;
  },
};

/** JSON text of a row's column, parsed (a PayloadError when it is not JSON). */
export function parseJsonColumn(text: string | null, column: string): unknown {
  if (text === null) throw new PayloadError(`the job has no ${column}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new PayloadError(`the job's ${column} is not JSON`);
  }
}

export function defineTask<P>(
  kind: string,
  o: {
    lane: Lane;
    /** Id prefix: "evt" for received events (the inbox), "job" for calls out. */
    prefix: "evt" | "job";
    /** Reads the payload from the row; by default from its `payload` JSON through `decodePayload`. */
    decode?: (row: JobRow) => P;
    decodePayload?: (raw: unknown) => P;
  },
): Task<P> {
  const decode =
    o.decode ??
    ((row: JobRow): P => {
      if (o.decodePayload === undefined) throw new Error(`task ${kind} reads no payload`);
      return o.decodePayload(parseJsonColumn(row.payload, "payload"));
    });
  return {
    kind,
    lane: o.lane,
    decode,
    job: (payload, j) => ({
      kind,
      lane: o.lane,
      prefix: o.prefix,
      payload,
      maxAttempts: j.maxAttempts,
      ...(j.dedupeKey === undefined ? {} : { dedupeKey: j.dedupeKey }),
      ...(j.resourceId === undefined ? {} : { resourceId: j.resourceId }),
      ...(j.runAt === undefined ? {} : { runAt: j.runAt }),
      ...(j.correlationId === undefined ? {} : { correlationId: j.correlationId }),
    }),
    handle: (run) => ({
      kind,
      run: async (job, ctx) => {
        // A PayloadError, from the decoding or from what the payload names (read by the run): no
        // retry can mend it.
        try {
          return await run(decode(job), job, ctx);
        } catch (e) {
          if (e instanceof PayloadError) throw new JobError(`${kind}: ${e.message}`, { retry: false });
          throw e;
        }
      },
    }),
  };
}

/** The worker's handlers, by kind (two handlers of one kind are a mistake: refused). */
export function handlersOf(handlers: readonly TaskHandler[]): Record<string, JobHandler> {
  const out: Record<string, JobHandler> = {};
  for (const h of handlers) {
    if (out[h.kind] !== undefined) throw new Error(`two handlers of job kind ${h.kind}`);
    out[h.kind] = h.run;
  }
  return out;
}
