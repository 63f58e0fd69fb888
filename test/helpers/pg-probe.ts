// Prints whether the PostgreSQL pass of the tests will run (used by scripts/test.mjs).
import { postgresSkipReason, testDatabaseUrl } from "./stores.js";

const reason = await postgresSkipReason();
console.log(reason === undefined ? `PostgreSQL pass: enabled (${testDatabaseUrl()})` : `PostgreSQL pass: skipped: ${reason}`);
