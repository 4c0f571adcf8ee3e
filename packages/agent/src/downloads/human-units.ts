/** 536870912 → "512 MiB", 1073741824 → "1.0 GiB": sizes as people read them in progress lines. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v >= 100 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** Bytes per second in decimal megabytes, as network rates are usually given: "4.2 MB/s". */
export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec < 1e6) return `${(bytesPerSec / 1e3).toFixed(bytesPerSec < 1e4 ? 1 : 0)} kB/s`;
  return `${(bytesPerSec / 1e6).toFixed(bytesPerSec < 1e8 ? 1 : 0)} MB/s`;
}
