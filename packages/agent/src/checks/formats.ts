/**
 * The string formats the agent's schemas use (`date-time`, `uuid`), as TypeBox 1.4 checks them
 * (typebox/build/format: date_time, date, time, uuid; MIT licence, © sinclairzx81), for the
 * generated checks (`generated.ts`), which must not load TypeBox. test/checks.test.ts compares
 * them with TypeBox's.
 */

// RFC 9557 suffix (a time zone name or offset in brackets, then tags).
const DATE_TIME_SUFFIX = /^(?:\[!?(?:(?!\.{1,2}[/\]])[A-Za-z._][A-Za-z._0-9+-]{0,13}(?:\/(?!\.{1,2}[/\]])[A-Za-z._][A-Za-z._0-9+-]{0,13})*|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\](?:\[!?[a-z_][a-z_0-9-]*=[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\])*|(?:\[!?[a-z_][a-z_0-9-]*=[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\])*)$/;

/** An RFC 3339 date-time, with an optional RFC 9557 suffix. */
export function IsDateTime(value: string): boolean {
  const index = value.indexOf('[');
  const datetime = index === -1 ? value : value.slice(0, index);
  if (index !== -1 && !DATE_TIME_SUFFIX.test(value.slice(index))) return false;
  const split = datetime.split(/T/i);
  return split.length === 2 && IsDate(split[0]!) && IsTime(split[1]!);
}

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DATE = /^(\d\d\d\d)-(\d\d)-(\d\d)$/;

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** An RFC 3339 full-date. */
export function IsDate(value: string): boolean {
  const matches = DATE.exec(value);
  if (!matches) return false;
  const year = +matches[1]!;
  const month = +matches[2]!;
  const day = +matches[3]!;
  return month >= 1 && month <= 12 && day >= 1 && day <= (month === 2 && isLeapYear(year) ? 29 : DAYS[month]!);
}

const TIME = /^(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:([Zz])|([+-])(\d\d):(\d\d))?$/;

/** An RFC 3339 full-time: with its offset (`strictTimeZone`, TypeBox's default). */
export function IsTime(value: string, strictTimeZone = true): boolean {
  const matches = TIME.exec(value);
  if (!matches) return false;
  if (strictTimeZone && !matches[4] && !matches[5]) return false;
  const hr = +matches[1]!;
  const min = +matches[2]!;
  const sec = +matches[3]!;
  if (hr > 23 || min > 59 || sec > 60) return false;
  if (matches[5]) {
    const tzH = +matches[6]!;
    const tzM = +matches[7]!;
    if (tzH > 23 || tzM > 59) return false;
  }
  if (sec < 60) return true;
  // A leap second must be 23:59:60 UTC.
  const tzSign = matches[5] === '-' ? -1 : 1;
  const tzH = +(matches[6] || 0);
  const tzM = +(matches[7] || 0);
  const totalUtcMin = hr * 60 + min - tzSign * (tzH * 60 + tzM);
  return ((totalUtcMin % 1440) + 1440) % 1440 === 1439;
}

const UUID = /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i;

/** A UUID, any version, either case. */
export function IsUuid(value: string): boolean {
  return UUID.test(value);
}
