/**
 * Money. What the source charged travels as exact decimal text (an Amount: "10.00", "0.993"), summed
 * and multiplied exactly; what is recorded is an integer number of minor units (cents for USD, yen
 * for JPY), each figure rounded once, half away from zero. Decimal text is parsed and printed with
 * BigInt arithmetic, never through floating point. Currency units come from ISO 4217.
 */
import { data as iso4217, publishDate } from "currency-codes";

/**
 * ISO 4217 codes whose minor unit is "N.A." in the table (gold, silver, palladium, platinum, SDR,
 * the European bond-market units, Sucre, ADB unit, the testing code, "no currency"). currency-codes
 * reports 0 digits for them, which would round an ounce of gold to a whole ounce: they are no money
 * an order can be priced in, so they are refused like codes the table does not list. A unit test
 * checks this list against the ISO XML shipped with currency-codes.
 */
export const NO_MINOR_UNIT: ReadonlySet<string> = new Set(["XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"]);

const MINOR_UNITS: ReadonlyMap<string, number> = new Map(iso4217.filter((c) => !NO_MINOR_UNIT.has(c.code)).map((c) => [c.code, c.digits]));

/** The publication date of the ISO 4217 table in use (currency-codes' copy of ISO's list one). */
export const ISO_4217_PUBLISHED: string = publishDate;

/** What a refused currency is told: the same words wherever a currency comes in. */
export const UNKNOWN_CURRENCY_MESSAGE = "is not an ISO 4217 currency code with a minor unit (e.g. USD, EUR, JPY)";

/**
 * Minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, BHD 3, IQD 3, LBP 2, CLF 4), any case;
 * undefined for a code ISO 4217 does not list (XYZ, withdrawn HRK) or gives no minor unit (XAU).
 */
export function currencyUnit(currency: string): number | undefined {
  return MINOR_UNITS.get(currency.toUpperCase());
}

/** currencyUnit for a code already checked at the door (schemas, catalog): an unknown one is a bug. */
export function currencyExponent(currency: string): number {
  const exp = currencyUnit(currency);
  if (exp === undefined) throw new Error(`currency ${currency} ${UNKNOWN_CURRENCY_MESSAGE}`);
  return exp;
}

/**
 * An exact decimal amount in some currency, as canonical text: an optional "-", digits, and the
 * fraction digits the source gave ("10.00", "0.993", "-1.5"). Made by parseAmount and the
 * arithmetic below; rounded to minor units by roundAmount.
 */
export type Amount = string;

/** units × 10^-scale */
interface Exact {
  units: bigint;
  scale: number;
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;
/** Longer text is no amount anyone charges (and BigInt work on it is wasted). */
const MAX_DIGITS = 60;

function toExact(value: string | number): Exact | undefined {
  let text: string;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return undefined;
    text = String(value);
    if (/e/i.test(text)) text = value.toFixed(20);
  } else {
    text = value.trim();
  }
  const m = DECIMAL.exec(text);
  if (m === null) return undefined;
  const [, sign, intPart = "", fracPart = ""] = m;
  if ((intPart === "" && fracPart === "") || intPart.length + fracPart.length > MAX_DIGITS) return undefined;
  const magnitude = BigInt((intPart === "" ? "0" : intPart) + fracPart);
  return { units: sign === "-" ? -magnitude : magnitude, scale: fracPart.length };
}

function fromExact(e: Exact): Amount {
  const negative = e.units < 0n;
  const digits = (negative ? -e.units : e.units).toString().padStart(e.scale + 1, "0");
  const intPart = digits.slice(0, digits.length - e.scale);
  const frac = digits.slice(digits.length - e.scale);
  return `${negative ? "-" : ""}${intPart}${e.scale > 0 ? `.${frac}` : ""}`;
}

const rescale = (e: Exact, scale: number): bigint => e.units * 10n ** BigInt(scale - e.scale);

function exact(a: Amount): Exact {
  const e = toExact(a);
  if (e === undefined) throw new Error(`not an amount: ${a}`);
  return e;
}

/** A decimal ("10", "0.993", 12.34) as an Amount; undefined for anything else ("1e3", "", NaN). */
export function parseAmount(value: string | number): Amount | undefined {
  const e = toExact(value);
  return e === undefined ? undefined : fromExact(e);
}

/** The exact sum ("0.725" + "0.225" = "0.950"); "0" for none. */
export function addAmounts(...amounts: Amount[]): Amount {
  const es = amounts.map(exact);
  const scale = Math.max(0, ...es.map((e) => e.scale));
  return fromExact({ units: es.reduce((s, e) => s + rescale(e, scale), 0n), scale });
}

/** The exact product with a whole number (a unit price × quantity). */
export function multiplyAmount(a: Amount, factor: number): Amount {
  if (!Number.isSafeInteger(factor)) throw new Error(`not a whole number: ${factor}`);
  const e = exact(a);
  return fromExact({ units: e.units * BigInt(factor), scale: e.scale });
}

/** The exact share of an amount at a rate in parts per million (a line subtotal's tax). */
export function applyRateToAmount(a: Amount, ratePpm: number): Amount {
  const e = exact(a);
  return fromExact({ units: e.units * BigInt(ratePpm), scale: e.scale + 6 });
}

/** An amount → minor units with `exponent` decimals, rounded half away from zero: the one rounding. */
export function roundAmount(a: Amount, exponent: number): number {
  const n = roundExact(exact(a), exponent);
  if (n === undefined) throw new RangeError(`amount ${a} is too large to count exactly`);
  return n;
}

function roundExact(e: Exact, exponent: number): number | undefined {
  const negative = e.units < 0n;
  let magnitude = negative ? -e.units : e.units;
  if (e.scale <= exponent) {
    magnitude *= 10n ** BigInt(exponent - e.scale);
  } else {
    const divisor = 10n ** BigInt(e.scale - exponent);
    const rest = magnitude % divisor;
    magnitude /= divisor;
    if (rest * 2n >= divisor) magnitude += 1n;
  }
  if (magnitude > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const n = Number(magnitude);
  return negative && n !== 0 ? -n : n;
}

/** Minor units as an Amount with exactly `exponent` decimals. */
export function minorToAmount(minor: number, exponent: number): Amount {
  return formatMinor(minor, exponent);
}

/** An amount as text with at least `exponent` decimals, nothing rounded ("10" → "10.00", "3.3333" stays). */
export function formatAmount(a: Amount, exponent: number): string {
  const e = exact(a);
  return fromExact(e.scale >= exponent ? e : { units: rescale(e, exponent), scale: exponent });
}

/** True when the amount is below zero. */
export const isNegativeAmount = (a: Amount): boolean => exact(a).units < 0n;

/**
 * Parses a decimal ("10", "10.5", "9.9900", 12.34) into an integer count of units with `exponent`
 * decimals, rounding half away from zero beyond them. Returns undefined for anything that is not a
 * plain decimal (exponents, NaN, empty) or too large to count exactly.
 */
export function parseDecimal(value: string | number, exponent: number): number | undefined {
  const e = toExact(value);
  return e === undefined ? undefined : roundExact(e, exponent);
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

/**
 * Splits `total` minor units into parts proportional to `weights` (exact, not negative), so that
 * the parts add up to `total` exactly (largest remainder; ties to the earlier part). With no
 * weight at all, the first part takes everything. Used to keep a tax breakdown (state, county)
 * whose rounded parts must add up to the line's tax, rounded once.
 */
export function allocate(total: number, weights: readonly Amount[]): number[] {
  if (weights.length === 0) return [];
  if (total < 0) return allocate(-total, weights).map((n) => (n === 0 ? 0 : -n));
  const es = weights.map(exact);
  const scale = Math.max(0, ...es.map((e) => e.scale));
  const w = es.map((e) => (e.units < 0n ? 0n : rescale(e, scale)));
  const sum = w.reduce((s, x) => s + x, 0n);
  if (sum === 0n) return w.map((_, i) => (i === 0 ? total : 0));
  const t = BigInt(total);
  const shares = w.map((x) => (t * x) / sum);
  const rest = w.map((x, i) => ({ i, r: t * x - (shares[i] as bigint) * sum }));
  let left = t - shares.reduce((s, x) => s + x, 0n);
  rest.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of rest) {
    if (left <= 0n) break;
    shares[i] = (shares[i] as bigint) + 1n;
    left -= 1n;
  }
  return shares.map(Number);
}
