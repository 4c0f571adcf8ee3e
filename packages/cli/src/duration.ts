/**
 * Parse a lifetime such as `24h`, `30m`, `7d`, `1h30m` or a bare number of seconds (`3600`)
 * into whole seconds. Returns undefined when the text is not a positive duration.
 */
const UNIT_SEC: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function parseDuration(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n > 0 && Number.isSafeInteger(n) ? n : undefined;
  }
  // One or more <number><unit> parts, each unit at most once and largest first ("1h30m").
  const re = /(\d+)([wdhms])/gy;
  let total = 0;
  let last = Infinity;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const unit = UNIT_SEC[m[2] ?? ''] ?? 0;
    if (unit >= last) return undefined;
    last = unit;
    total += Number(m[1]) * unit;
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length || total <= 0 || !Number.isSafeInteger(total)) return undefined;
  return total;
}
