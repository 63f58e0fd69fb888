import ipaddr from "ipaddr.js";

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A parsed set of addresses and CIDR ranges (IPv4 and IPv6). */
export interface Allowlist {
  readonly size: number;
  /** The entries as configured, normalised (for logs and `config check`). */
  readonly entries: readonly string[];
  readonly ranges: readonly Range[];
}

/**
 * Parses "203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "::ffff:192.0.2.1". Throws an Error
 * naming the first bad entry.
 */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  const ranges: Range[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    let range: Range;
    try {
      if (entry.includes("/")) {
        range = ipaddr.parseCIDR(entry);
      } else {
        const addr = ipaddr.parse(entry);
        range = [addr, addr.kind() === "ipv4" ? 32 : 128];
      }
    } catch {
      throw new Error(`"${entry}" is not an IP address or CIDR range`);
    }
    // An IPv4-mapped IPv6 entry (::ffff:a.b.c.d[/n>=96]) is the IPv4 range it maps.
    const [addr, bits] = range;
    if (addr instanceof ipaddr.IPv6 && addr.isIPv4MappedAddress() && bits >= 96) {
      range = [addr.toIPv4Address(), bits - 96];
    }
    ranges.push(range);
  }
  return {
    size: ranges.length,
    entries: ranges.map(([a, b]) => `${a.toString()}/${b}`),
    ranges,
  };
}

/**
 * True when `address` (as Node reports it: "127.0.0.1", "::1", "::ffff:127.0.0.1") is inside one of
 * the ranges. An unparseable address is never allowed.
 */
export function isAddressAllowed(list: Allowlist, address: string | undefined): boolean {
  if (address === undefined || !ipaddr.isValid(address)) return false;
  let addr = ipaddr.parse(address);
  if (addr instanceof ipaddr.IPv6 && addr.isIPv4MappedAddress()) addr = addr.toIPv4Address();
  for (const [net, bits] of list.ranges) {
    if (addr.kind() === net.kind()) {
      if (addr.match(net, bits)) return true;
    } else if (addr instanceof ipaddr.IPv4 && net instanceof ipaddr.IPv6) {
      // An IPv6 range written to cover mapped addresses (e.g. ::ffff:0:0/96).
      if (addr.toIPv4MappedAddress().match(net, bits)) return true;
    }
  }
  return false;
}
