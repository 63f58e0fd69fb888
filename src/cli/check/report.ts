// The output of `orderbridge check`: a table streamed row by row as checks finish (or JSON lines),
// JUnit XML at the end, and a progress line on stderr.

export interface CheckResult {
  name: string;
  ok: boolean;
  reason: string;
  ms: number;
}

/** What a run is about to do, said before its first request. */
export interface Plan {
  /** The target, its credentials masked. */
  url: string;
  checks: string[];
  safe: boolean;
  timeoutMs: number;
  /** Orders a handler that gets every check right places. */
  orders: number;
  /** Units per SKU in those orders. */
  units: Record<string, number>;
  /** The SKU the handler must not know. */
  unknownSku: string;
}

export interface Summary {
  passed: number;
  failed: number;
  ms: number;
  unreachable: boolean;
}

export interface Reporter {
  start(plan: Plan): void;
  result(r: CheckResult): void;
  finish(s: Summary): void;
}

// eslint-disable-next-line no-control-regex -- control characters are what this replaces
const oneLine = (s: string): string => s.replace(/[\u0000-\u001f\u007f]+/g, " ");

/** The notice printed before any request: what the run sends, and that it places real orders. */
export function describePlan(p: Plan): string {
  const n = p.checks.length;
  const head = `orderbridge check: ${n} check${n === 1 ? "" : "s"} against ${p.url}, all at once, ${p.timeoutMs} ms per request.`;
  if (p.safe) return `${head}\n--safe: nothing it sends can become an order (the signature checks send a SKU nobody sells).\n`;
  if (p.orders === 0) return `${head}\nA handler that gets these checks right places no order through them; one that does not may.\n`;
  const units = Object.entries(p.units)
    .filter(([, u]) => u > 0)
    .map(([sku, u]) => `${u} × ${sku}`)
    .join(", ");
  return (
    `${head}\nThis places ${p.orders} real order${p.orders === 1 ? "" : "s"} through the handler (${units}; more if the handler ` +
    `gets retries or refusals wrong); ${p.unknownSku} must be unknown to it. Point it at a test or staging system.\n`
  );
}

// ---------------------------------------------------------------------------------------------
// The table

const ANSI = { green: "\u001b[32m", red: "\u001b[31m", bold: "\u001b[1m", reset: "\u001b[0m" };
/** The narrowest reason column wrapped to; a terminal narrower than the table scrolls instead. */
const MIN_REASON_WIDTH = 20;

/** Words of `text` in lines of at most `width` characters; a longer word is cut. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (let word of text.split(/ +/).filter(Boolean)) {
    while (word.length > width) {
      if (line !== "") lines.push(line);
      lines.push(word.slice(0, width));
      word = word.slice(width);
      line = "";
    }
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "" || lines.length === 0) lines.push(line);
  return lines;
}

/** Colour only on a terminal, and not when NO_COLOR is set to anything but "" (no-color.org). */
export function colorWanted(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && (env["NO_COLOR"] ?? "") === "";
}

export interface TextOptions {
  out: NodeJS.WritableStream;
  /** ANSI colours (a TTY without NO_COLOR). */
  color: boolean;
  /** Terminal columns to fit the table into (reasons are wrapped); undefined: one line per check. */
  width?: number | undefined;
}

/**
 * The result table, one row written as each check finishes: columns of fixed width (the longest
 * check name), the reason wrapped to what is left of the terminal's width.
 */
export function textReporter(o: TextOptions): Reporter {
  const paint = (code: string, s: string): string => (o.color ? `${code}${s}${ANSI.reset}` : s);
  let nameWidth = 5;
  let reasonWidth: number | undefined;
  const TIME = "time (ms)";
  // `result` is six characters wide as shown (colour codes take no room).
  const row = (result: string, name: string, time: string, reason: string): string => `${result}  ${name.padEnd(nameWidth)}  ${time.padStart(TIME.length)}  ${reason}`.trimEnd();
  return {
    start(plan) {
      nameWidth = Math.max(5, ...plan.checks.map((c) => c.length));
      const fixed = 6 + 2 + nameWidth + 2 + TIME.length + 2;
      reasonWidth = o.width === undefined ? undefined : Math.max(MIN_REASON_WIDTH, o.width - fixed);
      o.out.write(`${row("result", "check", TIME, "reason")}\n${row("-".repeat(6), "-".repeat(nameWidth), "-".repeat(TIME.length), "-".repeat(reasonWidth ?? 6))}\n`);
    },
    result(r) {
      const reason = oneLine(r.reason);
      const [first = "", ...more] = reasonWidth === undefined ? [reason] : wrap(reason, reasonWidth);
      const status = `${r.ok ? paint(ANSI.green, "PASS") : paint(ANSI.red + ANSI.bold, "FAIL")}  `;
      const lines = [row(status, r.name, String(r.ms), first)];
      const indent = " ".repeat(6 + 2 + nameWidth + 2 + TIME.length + 2);
      for (const l of more) lines.push(`${indent}${l}`);
      o.out.write(`${lines.join("\n")}\n`);
    },
    finish(s) {
      const text = `${s.passed} passed, ${s.failed} failed`;
      o.out.write(`${s.failed === 0 ? paint(ANSI.green, text) : paint(ANSI.red + ANSI.bold, text)}\n`);
    },
  };
}

/** --json: one JSON object per line: the plan, each result as it finishes, the summary. */
export function jsonReporter(out: NodeJS.WritableStream): Reporter {
  const line = (v: object): void => void out.write(`${JSON.stringify(v)}\n`);
  return {
    start: (plan) => line({ type: "plan", ...plan }),
    result: (r) => line({ type: "result", ...r }),
    finish: (s) => line({ type: "summary", ...s }),
  };
}

// ---------------------------------------------------------------------------------------------
// JUnit

// XML 1.0 allows neither control characters (other than tab, LF, CR) nor lone surrogates.
const XML_INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function xmlEscape(s: string): string {
  return s
    .replace(XML_INVALID, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

export function junitXml(results: readonly CheckResult[], totalMs: number): string {
  const failures = results.filter((r) => !r.ok).length;
  const cases = results.map((r) => {
    const open = `  <testcase classname="orderbridge.check" name="${xmlEscape(r.name)}" time="${seconds(r.ms)}"`;
    if (r.ok) return `${open}/>`;
    return `${open}>\n    <failure message="${xmlEscape(r.reason)}">${xmlEscape(r.reason)}</failure>\n  </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuite name="orderbridge check" tests="${results.length}" failures="${failures}" errors="0" time="${seconds(totalMs)}">`,
    ...cases,
    "</testsuite>",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Progress

const BAR_WIDTH = 10;

/** One line redrawn with \r: how many checks are done and which are still waited for. */
export function progressBar(out: NodeJS.WritableStream, width?: number) {
  let drawn = 0;
  return {
    draw(done: number, total: number, waiting: readonly string[]): void {
      const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
      let text = `[${"=".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ${done}/${total}${waiting.length > 0 ? ` waiting for ${waiting.join(", ")}` : ""}`;
      // Never wider than the terminal: a wrapped line could not be redrawn in place.
      if (width !== undefined && text.length > width - 1) text = `${text.slice(0, Math.max(0, width - 2))}…`;
      out.write(`\r${text}${" ".repeat(Math.max(0, drawn - text.length))}`);
      drawn = text.length;
    },
    clear(): void {
      if (drawn > 0) out.write(`\r${" ".repeat(drawn)}\r`);
      drawn = 0;
    },
  };
}
