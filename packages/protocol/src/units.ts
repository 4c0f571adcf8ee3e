// ---------------------------------------------------------------------------------------------
// Sizes and durations as people read them, for the CLI, the web console and the agent's
// progress messages alike. A label always says which arithmetic made it: binary units (KiB,
// MiB, GiB: powers of 1024) for memory, files and transfer rates (a rate is read beside the
// sizes it moves: "12 MiB of 100 MiB at 4.2 MiB/s"), decimal ones (kB, MB, GB: powers of 1000)
// for disk sizes, which the protocol gives in decimal GB. Relative times round down to the
// largest whole unit everywhere ("in 1h" for 1 h 59 min), so the CLI and the console agree.
// Plain functions without dependencies: `@pallas/protocol/units` is safe in a browser bundle.
// ---------------------------------------------------------------------------------------------
import type { PresenceSummary } from './api/history.js';

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** 100 and more rounded, anything less to one decimal, which is left off when it is 0: "512", "1.5", "2". */
function amount(v: number): string {
  if (v >= 100) return String(Math.round(v));
  const tenths = Math.round(v * 10) / 10;
  return Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1);
}

function scaled(n: number, base: number, units: readonly string[]): string {
  let v = Math.max(0, n);
  let u = 0;
  while (v >= base && u < units.length - 1) {
    v /= base;
    u++;
  }
  // 1023.96 KiB would print as "1024 KiB": say "1 MiB" instead.
  if (u < units.length - 1 && Math.round(v) >= base) {
    v /= base;
    u++;
  }
  return `${u === 0 ? Math.round(v) : amount(v)} ${units[u]}`;
}

/** Bytes in binary units: 512 → "512 B", 1536 → "1.5 KiB", 2^30 → "1 GiB". */
export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, BINARY);
}

/** Memory given in MiB (as hypervisors report it): 512 → "512 MiB", 8192 → "8 GiB". */
export function formatMiB(mib: number): string {
  return formatBytes(mib * 1024 * 1024);
}

/** A disk size given in decimal GB (as VM specs and datastores are): 20 → "20 GB", 1800 → "1.8 TB". */
export function formatGB(gb: number): string {
  return scaled(gb * 1e9, 1000, DECIMAL);
}

/** Bytes a second in the units of the sizes beside it (binary): 4_404_019 → "4.2 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/**
 * A time relative to `now`: "12s ago", "5m ago", "3h ago", "2d ago"; future times "in 23h";
 * "just now" within a second (and up to 5 s ahead: clock skew between manager and reader
 * must not read as "in 2s"); null as "never". Always the largest whole unit, rounded down.
 */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diffSec = Math.round((now - t) / 1000);
  if (Math.abs(diffSec) < 1 || (diffSec < 0 && diffSec > -5)) return 'just now';
  const span = largestUnit(Math.abs(diffSec));
  return diffSec > 0 ? `${span} ago` : `in ${span}`;
}

function largestUnit(sec: number): string {
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h`;
  return `${Math.floor(sec / 86400)}d`;
}

/** A span in its two largest units: "42s", "12m 5s", "3h 12m", "5d 3h". */
export function formatDuration(totalSec: number): string {
  const s = Math.max(0, Math.floor(totalSec));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

const UNIT_SEC: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Whole seconds from `24h`, `30m`, `7d`, `1h30m` or a bare number of seconds (`3600`), the
 * forms `formatDuration` prints. Undefined when the text is not a positive duration.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n > 0 && Number.isSafeInteger(n) ? n : undefined;
  }
  // One or more <number><unit> parts, each unit at most once and largest first ("1h30m").
  const re = /(\d+)([wdhms])\s*/gy;
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

// --- History in words (docs/history.md): the CLI's `devices show` and the console's device page.

/** "24 h", "7 d", "90 min": a range's length as people say it. */
export function formatSpan(sec: number): string {
  if (sec % 86400 === 0 && sec > 2 * 86400) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  return `${Math.round(sec / 60)} min`;
}

/** "41 min", "2 h 5 min", "3 d 4 h": a stretch of time, to the minute (seconds under one). */
export function formatLength(sec: number): string {
  if (sec < 60) return `${Math.round(sec)} s`;
  return formatDuration(sec).replace(/(\d+)([dhm])/g, (_, n: string, u: string) => `${n} ${u === 'm' ? 'min' : u}`).replace(/ \d+s$/, '');
}

/**
 * A device's presence over a range in one line: "offline 3 times in 24 h, longest 41 min
 * (1 h 10 min in all); online 95 % of the time". States other than online and offline
 * (unresponsive, …) are named when they happened.
 */
export function presenceInWords(summary: PresenceSummary[], rangeSec: number): string {
  if (summary.length === 0) return `no presence recorded in ${formatSpan(rangeSec)}`;
  const span = formatSpan(rangeSec);
  const known = summary.reduce((s, x) => s + x.totalSec, 0);
  const parts: string[] = [];
  for (const s of summary) {
    if (s.state === 'online') continue;
    if (s.times === 0 && s.totalSec === 0) continue;
    const times = s.times === 0 ? `${s.state} since before the range` : `${s.state} ${s.times === 1 ? 'once' : `${s.times} times`} in ${span}`;
    parts.push(`${times}, longest ${formatLength(s.longestSec)}${s.times > 1 ? ` (${formatLength(s.totalSec)} in all)` : ''}`);
  }
  if (parts.length === 0) parts.push(`never offline in ${span}`);
  const online = summary.find((s) => s.state === 'online')?.totalSec ?? 0;
  if (known > 0) parts.push(`online ${formatPercent(online / known)} of the time`);
  return parts.join('; ');
}

/** "95.1 %": a ratio as a percentage, to a tenth (whole at the ends, so never "100.0 %"). */
export function formatPercent(ratio: number): string {
  const pct = ratio * 100;
  return `${pct >= 99.95 || pct < 0.05 ? pct.toFixed(0) : pct.toFixed(1)} %`;
}
