import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

/**
 * Node options for a manager the benchmark starts: with PALLAS_BENCH_PROFILE=<dir>, a CPU
 * profile written there when it exits (summarize it with bench/standalone/profile-summary.mjs).
 */
export function profileNodeArgs(): string[] {
  const dir = process.env.PALLAS_BENCH_PROFILE;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

/** User + system CPU seconds a process has used so far, from /proc/<pid>/stat (USER_HZ is 100 on Linux). Throws when it is gone. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14 and 15)
}

/** The CPU seconds of several processes, those gone meanwhile left out. */
export function cpuSecondsOf(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuSeconds(pid);
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

/** The PostgreSQL backends serving a database (its pools and LISTEN sessions), psql's own left out. */
export function postgresBackends(databaseUrl: string): number[] {
  return execFileSync('psql', [databaseUrl, '-Atc', 'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map(Number);
}

/** Resident set size of a process in bytes, read from /proc. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The pid of a running program by its command name, or undefined. */
export function pidOf(comm: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** One sample value from Prometheus text (sums every series of the metric when no labels given). */
export function metricValue(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * A process's memory from `/proc/<pid>/smaps_rollup` (Linux ≥ 4.14), in bytes: `rss` (every
 * resident page it maps, shared ones in full), `pss` (shared pages divided among the processes
 * that map them) and `uss` (its private pages only: what it would give back by exiting).
 * Undefined when the file cannot be read (older kernel, another user's process).
 */
export function memoryOf(pid: number): { rss: number; pss: number; uss: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss'), uss: kb('Private_Clean') + kb('Private_Dirty') };
}

/** The peak RSS of a process since it started or since `resetPeakRss` (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); false if the kernel refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The direct children of a process (Linux ≥ 3.5 with CONFIG_PROC_CHILDREN), or []. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
