// ---------------------------------------------------------------------------------------------
// Sizes and durations as people read them, for the CLI, the web console and the agent's
// progress messages alike. A label always says which arithmetic made it: binary units (KiB,
// MiB, GiB: powers of 1024) for memory and files, decimal ones (kB, MB, GB: powers of 1000)
// for disk sizes, which the protocol gives in decimal GB, and for network rates.
// Plain functions without dependencies: `@pallas/protocol/units` is safe in a browser bundle.
// ---------------------------------------------------------------------------------------------

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

/** Bytes a second in decimal units, as network rates are given: 4_200_000 → "4.2 MB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${scaled(bytesPerSec, 1000, DECIMAL)}/s`;
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
