/**
 * The resolutions history is kept at and how long (docs/history.md). Buckets are minutes
 * since the epoch; a bucket of resolution r starts at a multiple of r.
 */
export interface Resolution {
  /** Bucket length, minutes. */
  minutes: number;
  /** How long its buckets are kept, minutes. */
  keepMinutes: number;
}

export interface Retention {
  /** 1-minute buckets. Default 25 h: a 24 h chart is always full. */
  fine: Resolution;
  /** 15-minute buckets. Default 31 days: a 30-day chart is always full. */
  coarse: Resolution;
  /** Presence transitions, minutes. Default 31 days (a device's latest one is always kept). */
  presenceKeepMinutes: number;
}

export const DEFAULT_RETENTION: Retention = {
  fine: { minutes: 1, keepMinutes: 25 * 60 },
  coarse: { minutes: 15, keepMinutes: 31 * 24 * 60 },
  presenceKeepMinutes: 31 * 24 * 60,
};

export const MINUTE_MS = 60_000;

export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);
export const bucketOf = (minute: number, resolution: number): number => Math.floor(minute / resolution) * resolution;
export const isoOfMinute = (minute: number): string => new Date(minute * MINUTE_MS).toISOString();
