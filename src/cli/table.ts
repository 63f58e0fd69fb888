/** A plain-text table: a header, a rule, and one line per row; long cells are cut to `max`. */
export function table(headers: string[], rows: unknown[][], max = 60): string {
  const cell = (v: unknown): string => {
    const s = v === null || v === undefined ? "" : (typeof v === "string" ? v : JSON.stringify(v)).replace(/\s+/g, " ");
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  };
  const body = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n") + "\n";
}
