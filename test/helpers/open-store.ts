// Opens (and so migrates) the store the environment describes, prints what it applied, closes.
// Used to start several processes against one database at once.
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/db.js";

const log = createLogger({ level: "error", format: "json", silent: true });
const store = await openStore(loadConfig(process.env).database, log);
await store.ping();
await store.close();
console.log("opened");
