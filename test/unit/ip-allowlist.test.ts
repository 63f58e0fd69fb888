import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAddressAllowed, parseAllowlist } from "../../src/security/ip-allowlist.js";

describe("IP allowlist", () => {
  const list = parseAllowlist(["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "::ffff:192.0.2.0/120"]);

  const cases: [string | undefined, boolean][] = [
    ["203.0.113.7", true],
    ["203.0.113.8", false],
    ["198.51.100.255", true],
    ["198.51.101.1", false],
    ["::ffff:198.51.100.9", true], // IPv4-mapped IPv6, as Node reports IPv4 clients on a dual-stack socket
    ["::ffff:203.0.113.7", true],
    ["2001:db8:1::5", true],
    ["2001:db9::1", false],
    ["192.0.2.77", true], // matched by the IPv4-mapped range entry
    ["::ffff:192.0.2.77", true],
    ["::1", false],
    ["not-an-ip", false],
    [undefined, false],
  ];
  for (const [addr, expected] of cases) {
    it(`${String(addr)} → ${expected ? "allowed" : "refused"}`, () => assert.equal(isAddressAllowed(list, addr), expected));
  }

  it("normalises entries and rejects bad ones", () => {
    assert.deepEqual(parseAllowlist(["10.0.0.1", "::1"]).entries, ["10.0.0.1/32", "::1/128"]);
    assert.throws(() => parseAllowlist(["10.0.0.0/33"]), /"10.0.0.0\/33" is not an IP address or CIDR range/);
    assert.throws(() => parseAllowlist(["example.com"]), /not an IP address/);
  });

  it("an empty list allows nobody", () => assert.equal(isAddressAllowed(parseAllowlist([]), "127.0.0.1"), false));
});
