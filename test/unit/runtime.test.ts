import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { operatorSetHeapGrowing } from "../../src/runtime.js";

describe("runtime tuning", () => {
  it("leaves the heap-growing factor to the operator who set one, on the command line or in NODE_OPTIONS", () => {
    assert.equal(operatorSetHeapGrowing([], undefined), false);
    assert.equal(operatorSetHeapGrowing(["--max-semi-space-size=4"], "--enable-source-maps"), false);
    assert.equal(operatorSetHeapGrowing(["--heap-growing-percent=30"], undefined), true);
    assert.equal(operatorSetHeapGrowing([], "--max-old-space-size=512  --heap_growing_percent=20"), true);
    assert.equal(operatorSetHeapGrowing([], "--heap-growing-percentage=1"), false, "another flag");
  });

  it("the flag it sets is one this Node.js knows", async () => {
    // setFlagsFromString ignores unknown flags silently; make sure this one exists.
    const { stdout } = await promisify(execFile)(process.execPath, ["--v8-options"], { maxBuffer: 16 * 1024 * 1024 });
    assert.match(stdout, /--heap-growing-percent \(/);
  });
});
