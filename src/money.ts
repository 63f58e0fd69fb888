/**
 * Money is always an integer number of minor units (cents for USD, yen for JPY). Decimal text is
 * parsed and printed with string arithmetic, never through floating point.
 */

const exponentCache = new Map<string, number>();

/** Number of minor-unit digits of an ISO-4217 currency (USD 2, JPY 0, BHD 3). */
export function currencyExponent(currency: string): number {
  const code = currency.toUpperCase();
  let exp = exponentCache.get(code);
  if (exp === undefined) {
    try {
      exp = new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      exp = 2;
    }
    exponentCache.set(code, exp);
  }
  return exp;
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * Parses a decimal ("10", "10.5", "9.9900", 12.34) into an integer count of units with `exponent`
 * decimals, rounding half away from zero beyond them. Returns undefined for anything that is not a
 * plain decimal (exponents, NaN, empty) or too large to count exactly.
 */
export function parseDecimal(value: string | number, exponent: number): number | undefined {
  let text: string;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return undefined;
    text = String(value);
    if (/e/i.test(text)) text = value.toFixed(Math.min(20, exponent + 2));
  } else {
    text = value.trim();
  }
  const m = DECIMAL.exec(text);
  if (m === null) return undefined;
  const [, sign, intPart = "", fracPart = ""] = m;
  if (intPart === "" && fracPart === "") return undefined;
  const frac = fracPart.padEnd(exponent + 1, "0");
  const kept = frac.slice(0, exponent);
  const roundDigit = Number(frac[exponent] ?? "0");
  let units = BigInt((intPart === "" ? "0" : intPart) + kept);
  if (roundDigit >= 5) units += 1n;
  if (units > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const n = Number(units);
  return sign === "-" && n !== 0 ? -n : n;
}

/** Minor units → decimal text with `places` decimals: formatMinor(1000, 2, 4) = "10.0000". */
export function formatMinor(minor: number, exponent: number, places = exponent): string {
  const negative = minor < 0;
  const digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
  const intPart = digits.slice(0, digits.length - exponent);
  let frac = digits.slice(digits.length - exponent);
  frac = places >= exponent ? frac.padEnd(places, "0") : frac.slice(0, places);
  return `${negative ? "-" : ""}${intPart}${places > 0 ? "." + frac : ""}`;
}

/** Parts per million of a rate given as a fraction: "0.09" → 90000. */
export function parseRatePpm(value: string | number): number | undefined {
  return parseDecimal(value, 6);
}

/** amount × rate, rounded half up to a whole minor unit. */
export function applyRate(amountMinor: number, ratePpm: number): number {
  const product = BigInt(amountMinor) * BigInt(ratePpm);
  return Number((product + 500_000n) / 1_000_000n);
}
