// How figures are written in the log and the report.

export const fmtSec = (ms: number | undefined): string => (ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`);
export const num = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : "–");
export const ms = (x: number): string => (Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : "–");
export const mark = (ok: boolean | undefined): string => (ok === undefined ? "–" : ok ? "✅" : "❌");
export const ratio = (a: number, b: number): number => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN);
export const ratioText = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
export const check = (x: number, ok: (v: number) => boolean): boolean | undefined => (Number.isFinite(x) ? ok(x) : undefined);
