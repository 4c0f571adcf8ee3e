import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import type { Cluster } from '@pallas/testkit';

/**
 * Node options for a manager the benchmark starts:
 * - PALLAS_BENCH_PROFILE=<dir>: a V8 CPU profile written there when it exits (summarize it
 *   with bench/standalone/profile-summary.mjs). Its samples are wall-clock: time a manager
 *   spent off the CPU inside a system call (its turn given to the process its write woke)
 *   shows as that call's.
 * - PALLAS_BENCH_PERF=1: a map of the JIT's code in /tmp/perf-<pid>.map, so that Linux `perf`
 *   names JavaScript functions; `perf` samples only time on the CPU, every thread's (V8's
 *   compiler and GC helpers included). bench/standalone/perf-categories.mjs sorts them.
 * - PALLAS_BENCH_NODE_ARGS="<option> …": any other Node options, space-separated, e.g.
 *   `--log-deopt --logfile=/tmp/v8.log` or `--import <a preload that samples the heap>`.
 */
export function profileNodeArgs(): string[] {
  const dir = process.env.PALLAS_BENCH_PROFILE;
  return [
    ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
    ...(process.env.PALLAS_BENCH_PERF ? ['--perf-basic-prof-only-functions'] : []),
    ...(process.env.PALLAS_BENCH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []),
  ];
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

/**
 * CPU seconds of changing sets of processes, by kind, polled. A database pool closes idle
 * connections and opens new ones under load, so a backend may start or end between two
 * readings: read once at the start and once at the end, the backends gone meanwhile took their
 * CPU with them and the figure could even come out negative. Polled, a process gone counts
 * with its last reading (at most one interval's CPU lost), and one born meanwhile from 0.
 */
export class PolledCpu {
  readonly #start = new Map<number, number>();
  readonly #last = new Map<number, { kind: string; seconds: number }>();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pids: () => ReadonlyMap<string, readonly number[]>, intervalMs = 250) {
    for (const list of pids().values()) for (const pid of list) this.#start.set(pid, cpuSecondsOf([pid]));
    this.#timer = setInterval(() => this.poll(), intervalMs);
    this.#timer.unref();
  }

  poll(): void {
    for (const [kind, list] of this.pids()) {
      for (const pid of list) {
        try {
          this.#last.set(pid, { kind, seconds: cpuSeconds(pid) });
        } catch {
          // gone meanwhile: its last reading stands
        }
      }
    }
  }

  /** Stops polling; CPU seconds by kind since the start. */
  stop(): Map<string, number> {
    this.poll();
    clearInterval(this.#timer);
    const out = new Map<string, number>();
    for (const [pid, { kind, seconds }] of this.#last) out.set(kind, (out.get(kind) ?? 0) + seconds - (this.#start.get(pid) ?? 0));
    return out;
  }
}

/**
 * The PostgreSQL backends serving a database (its pools and LISTEN sessions), from their
 * process titles in /proc (`postgres: 15/main: <user> <database> <client> …`): the server
 * must be on this machine, as the benchmarks' is. Read from /proc rather than asked of
 * `pg_stat_activity`, because `PolledCpu` reads it several times a second, and a psql session
 * each time would add its own backend's start to the CPU being measured.
 */
export function postgresBackends(databaseUrl: string): number[] {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (title.startsWith('postgres: ') && title.split(' ')[3] === database) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
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

/**
 * A cluster's own processes by kind, for `PolledCpu`: each manager, Mosquitto, nginx with its
 * workers, and the database's backends (found again at each call: they come and go).
 */
export function clusterProcesses(c: Cluster): Array<[string, number[]]> {
  return [
    ...c.managers.map((m, i): [string, number[]] => [`manager ${i + 1}`, [m.pid]]),
    ['mosquitto', [c.broker.pid()]],
    ['nginx', [c.nginx.proc.pid, ...childPids(c.nginx.proc.pid)]],
    ['postgresql (its backends)', postgresBackends(c.databaseUrl)],
  ];
}
