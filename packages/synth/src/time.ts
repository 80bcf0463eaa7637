/**
 * Day numbers (days since 1970-01-01 UTC) and their ISO text. Formatting through Date is a hot
 * spot for a million events, so dates and minute-of-day times are cached as strings.
 */

/** Milliseconds per day. */
export const MS_PER_DAY = 86_400_000;

/** The day number of a calendar date (month 1-12). */
export const dayOf = (year: number, month: number, day: number): number => Date.UTC(year, month - 1, day) / MS_PER_DAY;

const dateCache = new Map<number, string>();
const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const TIMES = Array.from({ length: 1440 }, (_, m) => `T${two(Math.floor(m / 60))}:${two(m % 60)}:00Z`);

/** "YYYY-MM-DD" of a day number. */
export function isoDate(day: number): string {
  let text = dateCache.get(day);
  if (text === undefined) {
    text = new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
    dateCache.set(day, text);
  }
  return text;
}

/** "YYYY-MM-DDThh:mm:00Z" of a time in ms since epoch, truncated to the minute (Synthea's form). */
export function isoDateTime(ms: number): string {
  const day = Math.floor(ms / MS_PER_DAY);
  const minute = Math.floor((ms - day * MS_PER_DAY) / 60_000);
  return isoDate(day) + TIMES[minute]!;
}

/** "YYYY-MM-DD hh:mm:00" of a time in ms since epoch (UTC, no offset; OMOP CSV's form), truncated to the minute. */
export function sqlDateTime(ms: number): string {
  const day = Math.floor(ms / MS_PER_DAY);
  const minute = Math.floor((ms - day * MS_PER_DAY) / 60_000);
  return `${isoDate(day)} ${TIMES[minute]!.slice(1, 9)}`;
}
