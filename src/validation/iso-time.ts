/**
 * An ISO 8601 date or time of a query or form field (2026-12-01, 2026-12-01T10:00:00Z,
 * 2026-12-01 10:00+01:00) as ms since the epoch; undefined for anything else. One reading for the
 * admin API's and the console's from/to. Pure.
 */
export function isoTimeMs(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Whether the text is a date alone (no time): as an upper bound, it means through that day. */
export const isDateOnly = (text: string | undefined): boolean => text !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(text);
