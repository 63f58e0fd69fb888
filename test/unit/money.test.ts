import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyRate, currencyExponent, formatMinor, parseDecimal, parseRatePpm } from "../../src/money.js";

describe("money", () => {
  it("knows currency exponents", () => {
    assert.equal(currencyExponent("USD"), 2);
    assert.equal(currencyExponent("jpy"), 0);
    assert.equal(currencyExponent("BHD"), 3);
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
