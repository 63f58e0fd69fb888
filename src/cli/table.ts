/** A plain-text table: a header, a rule, and one line per row; long cells are cut to `max`. */
export function table(headers: string[], rows: unknown[][], max = 60): string {
  const cell = (v: unknown): string => {
    const s = v === null || v === undefined ? "" : (typeof v === "string" ? v : JSON.stringify(v)).replace(/\s+/g, " ");
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  };
  const body = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n") + "\n";
}

/**
 * One record for a person to read: its plain fields as aligned `name  value` lines, then each
 * field that holds an object or a list, by name, as indented JSON (`tables` names lists printed as
 * a table of these columns instead).
 */
export function details(record: Record<string, unknown>, tables: Record<string, string[]> = {}): string {
  const plain = Object.entries(record).filter(([, v]) => v === null || typeof v !== "object");
  const nested = Object.entries(record).filter(([, v]) => v !== null && typeof v === "object");
  const width = Math.max(0, ...plain.map(([k]) => k.length));
  const out = plain.map(([k, v]) => `${k.padEnd(width)}  ${v === null ? "-" : String(v)}`);
  for (const [k, v] of nested) {
    const columns = tables[k];
    if (columns !== undefined && Array.isArray(v)) {
      const rows = v.map((row) => columns.map((c) => (row as Record<string, unknown>)[c]));
      out.push("", `${k}:`, table(columns, rows).trimEnd().replace(/^/gm, "  "));
    } else {
      out.push("", `${k}:`, JSON.stringify(v, null, 2).replace(/^/gm, "  "));
    }
  }
  return `${out.join("\n")}\n`;
}
