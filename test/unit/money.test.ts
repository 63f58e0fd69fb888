import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import {
  addAmounts,
  allocate,
  applyRate,
  applyRateToAmount,
  currencyExponent,
  currencyUnit,
  formatAmount,
  formatMinor,
  multiplyAmount,
  NO_MINOR_UNIT,
  parseAmount,
  parseDecimal,
  parseRatePpm,
  roundAmount,
} from "../../src/money.js";
import { settleTotals } from "../../src/orders/amounts.js";

describe("money", () => {
  it("knows currency exponents from ISO 4217, not from Intl's CLDR digits", () => {
    assert.equal(currencyExponent("USD"), 2);
    assert.equal(currencyExponent("jpy"), 0);
    assert.equal(currencyExponent("BHD"), 3);
    // Where CLDR (Intl) differs from ISO 4217: Intl says IQD 0 and LBP 0.
    assert.equal(currencyExponent("IQD"), 3);
    assert.equal(currencyExponent("LBP"), 2);
    assert.equal(currencyExponent("CLF"), 4);
    assert.equal(currencyExponent("UYW"), 4);
    assert.equal(currencyExponent("ISK"), 0);
  });

  it("refuses codes ISO 4217 does not list or gives no minor unit", () => {
    for (const code of ["XYZ", "HRK", "XAU", "xdr", "XTS", "XXX", "", "US"]) assert.equal(currencyUnit(code), undefined, code);
    assert.throws(() => currencyExponent("XYZ"), /XYZ is not an ISO 4217 currency code with a minor unit/);
  });

  it("the codes without a minor unit are exactly the N.A. entries of the ISO table shipped with currency-codes", () => {
    const xml = fs.readFileSync(createRequire(import.meta.url).resolve("currency-codes/iso-4217-list-one.xml"), "utf8");
    const na = new Set<string>();
    for (const [, entry] of xml.matchAll(/<CcyNtry>([\s\S]*?)<\/CcyNtry>/g)) {
      const code = /<Ccy>(\w+)<\/Ccy>/.exec(entry ?? "")?.[1];
      if (code !== undefined && /<CcyMnrUnts>N\.A\.<\/CcyMnrUnts>/.test(entry ?? "")) na.add(code);
    }
    assert.deepEqual([...na].sort(), [...NO_MINOR_UNIT].sort());
  });

  it("adds and multiplies exactly, and rounds once: 0.725 + 0.225 is 0.95, not 0.73 + 0.23", () => {
    assert.equal(addAmounts("0.725", "0.225"), "0.950");
    assert.equal(roundAmount(addAmounts("0.725", "0.225"), 2), 95);
    assert.equal(roundAmount("0.725", 2) + roundAmount("0.225", 2), 96, "rounding each first is a cent off");
    assert.equal(roundAmount(addAmounts("0.355", "0.110"), 2), 47);
    assert.equal(addAmounts(), "0");
    assert.equal(addAmounts("10", "-0.5"), "9.5");
    assert.equal(multiplyAmount("8.3350", 3), "25.0050");
    assert.equal(roundAmount(multiplyAmount("8.3350", 3), 2), 2501);
    assert.equal(applyRateToAmount("25.005", 90_000), "2.250450000");
    assert.equal(roundAmount("-0.005", 2), -1, "half away from zero");
    assert.equal(roundAmount("0.0049", 2), 0);
    assert.equal(roundAmount("12.3456", 4), 123456);
    assert.throws(() => roundAmount("99999999999999999999", 2), RangeError);
  });

  it("parses amounts into canonical text and formats them without rounding", () => {
    assert.equal(parseAmount("0010.50"), "10.50");
    assert.equal(parseAmount(" -.5 "), "-0.5");
    assert.equal(parseAmount(10), "10");
    assert.equal(parseAmount(0.1 + 0.2), "0.30000000000000004");
    assert.equal(parseAmount("1e3"), undefined);
    assert.equal(parseAmount("abc"), undefined);
    assert.equal(formatAmount("10", 2), "10.00");
    assert.equal(formatAmount("3.3333", 2), "3.3333");
    assert.equal(formatAmount("8.335", 4), "8.3350");
  });

  it("allocates a rounded total over exact parts so that the parts add up to it", () => {
    assert.deepEqual(allocate(95, ["0.725", "0.225"]), [73, 22]);
    assert.deepEqual(allocate(47, ["0.355", "0.110"]), [36, 11]);
    assert.deepEqual(allocate(380, ["0.993", "0.308"]), [290, 90]);
    assert.deepEqual(allocate(10, ["1", "1", "1"]), [4, 3, 3]);
    assert.deepEqual(allocate(5, ["0", "0"]), [5, 0]);
    assert.deepEqual(allocate(-95, ["0.725", "0.225"]), [-73, -22]);
    assert.deepEqual(allocate(7, []), []);
  });

  it("settles totals: the source's win, each difference kept; without them the parts add up", () => {
    const parts = { subtotal: 1000, shippingTotal: 490, taxTotal: 177, discountTotal: 1000 };
    assert.deepEqual(settleTotals(parts, undefined, 2), { totals: { ...parts, total: 667 }, differences: [] });
    const s = settleTotals(parts, { subtotal: "10.00", taxTotal: "10.00", discountTotal: "0.00", total: "14.90" }, 2);
    assert.deepEqual(s.totals, { subtotal: 1000, shippingTotal: 490, taxTotal: 1000, discountTotal: 0, total: 1490 });
    assert.deepEqual(s.differences, [
      { field: "taxTotal", computed: 177, recorded: 1000, difference: 823 },
      { field: "discountTotal", computed: 1000, recorded: 0, difference: -1000 },
      { field: "total", computed: 2490, recorded: 1490, difference: -1000 },
    ]);
  });

  it("parses decimals exactly, rounding half up beyond the exponent", () => {
    const cases: [string | number, number, number | undefined][] = [
      ["10", 2, 1000],
      ["10.5", 2, 1050],
      ["9.9900", 2, 999],
      ["9.995", 2, 1000],
      ["9.994", 2, 999],
      [12.34, 2, 1234],
      [0.1 + 0.2, 2, 30],
      [".5", 2, 50],
      ["-1.25", 2, -125],
      ["1e3", 2, undefined],
      ["", 2, undefined],
      [".", 2, undefined],
      ["abc", 2, undefined],
      [Number.NaN, 2, undefined],
      ["99999999999999999999", 2, undefined],
      ["1234", 0, 1234],
    ];
    for (const [input, exp, expected] of cases) assert.equal(parseDecimal(input, exp), expected, `parseDecimal(${String(input)})`);
  });

  it("formats minor units", () => {
    assert.equal(formatMinor(1000, 2, 4), "10.0000");
    assert.equal(formatMinor(5, 2), "0.05");
    assert.equal(formatMinor(-125, 2), "-1.25");
    assert.equal(formatMinor(1234, 0, 4), "1234.0000");
    assert.equal(formatMinor(1234, 0), "1234");
  });

  it("applies rates in parts per million, rounding half up", () => {
    assert.equal(parseRatePpm("0.09"), 90_000);
    assert.equal(applyRate(4000, 90_000), 360);
    assert.equal(applyRate(1200, parseRatePpm("0.0834") as number), 100);
    assert.equal(applyRate(5, 100_000), 1); // 0.5 → 1
    assert.equal(applyRate(4, 100_000), 0); // 0.4 → 0
  });
});
