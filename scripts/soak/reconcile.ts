/**
 * The soak's reckoning: every request the soak sent (with its marker, the VM name it asked
 * for), every task the API holds for a marker, and every VM and change on each device's own
 * sim host state (`sim-host.json`), set against each other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Task, Vm } from '@pallas/protocol';

export interface Request {
  /** The VM name this request asked for: unique per request. */
  marker: string;
  deviceIds: string[];
  /** Where it was sent: the load balancer or a manager. */
  via: string;
  /** accepted: 202 with task ids; refused: a 4xx (nothing created); unknown: no answer, or a 5xx. */
  outcome: 'accepted' | 'refused' | 'unknown';
  status?: number;
  taskIds?: string[];
  detail?: string;
}

export interface SoakCounts {
  requests: {
    sent: number; accepted: number; refused: number; unknown: number;
    /** Of the requests without an accepted answer, those whose tasks exist all the same. */
    unknownThatCreated: number;
    /** Why the unknown ones had no answer: a refused connection, a cut one, a 502, a timeout. */
    unknownWhy: Record<string, number>;
  };
  /** Tasks: one per device of each request that created any. */
  submitted: number;
  succeeded: number;
  /** Final but not succeeded, by `state: error code`. */
  failed: Record<string, number>;
  stuck: number;
  lost: number;
  duplicated: number;
  /** One line per lost, duplicated or stuck task (the first 50). */
  problems: string[];
}

interface SimState {
  vms: Vm[];
  /** Changes made and calls refused (`refused`: the error code), with the name asked for on creates. */
  history: Array<{ op: string; vmId?: string; name?: string; refused?: string }>;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export function reconcile(requests: Request[], tasks: Task[], devices: Array<{ deviceId: string; stateDir: string }>): SoakCounts {
  const problems: string[] = [];
  const problem = (line: string) => { if (problems.length < 50) problems.push(line); };
  // On each device: how many times each marker VM was created, from the host's own history,
  // and how many creates of it the host refused because the name was taken: a task's second
  // run, whose result came too late to change the task's state (only a late result records it).
  const created = new Map<string, number>(); // `${deviceId}/${name}` → creates
  const taken = new Map<string, number>(); // `${deviceId}/${name}` → creates refused, name taken
  for (const d of devices) {
    let sim: SimState;
    try {
      sim = JSON.parse(readFileSync(join(d.stateDir, 'sim-host.json'), 'utf8')) as SimState;
    } catch {
      continue; // no change was ever made on this host
    }
    const nameOf = new Map(sim.vms.map((v) => [v.id, v.name]));
    for (const h of sim.history) {
      if (h.op !== 'createVm') continue;
      const name = h.name ?? (h.vmId === undefined ? undefined : nameOf.get(h.vmId));
      if (!name?.startsWith('soak-')) continue;
      const key = `${d.deviceId}/${name}`;
      if (h.refused === undefined) created.set(key, (created.get(key) ?? 0) + 1);
      else if (h.refused === 'invalid_spec') taken.set(key, (taken.get(key) ?? 0) + 1);
    }
    // A VM of a marker name that no history entry accounts for would be an effect from nowhere.
    for (const v of sim.vms) if (v.name.startsWith('soak-') && !sim.history.some((h) => h.vmId === v.id)) created.set(`${d.deviceId}/${v.name}`, created.get(`${d.deviceId}/${v.name}`) ?? 1);
  }
  const tasksByKey = new Map<string, Task[]>();
  for (const t of tasks) {
    if (t.operation.kind !== 'vm.create') continue;
    const key = `${t.deviceId}/${t.operation.spec.name}`;
    tasksByKey.set(key, [...(tasksByKey.get(key) ?? []), t]);
  }
  const expected = new Set<string>();
  const counts: SoakCounts = {
    requests: { sent: requests.length, accepted: 0, refused: 0, unknown: 0, unknownThatCreated: 0, unknownWhy: {} },
    submitted: 0, succeeded: 0, failed: {}, stuck: 0, lost: 0, duplicated: 0, problems,
  };
  for (const r of requests) {
    counts.requests[r.outcome]++;
    if (r.outcome === 'unknown') {
      const why = whyUnanswered(r.detail);
      counts.requests.unknownWhy[why] = (counts.requests.unknownWhy[why] ?? 0) + 1;
    }
    let createdAny = false;
    for (const deviceId of r.deviceIds) {
      const key = `${deviceId}/${r.marker}`;
      expected.add(key);
      const found = tasksByKey.get(key) ?? [];
      const effects = created.get(key) ?? 0;
      const where = `${r.marker} on ${deviceId.slice(0, 8)} (sent to ${r.via}, ${r.outcome}${r.detail ? `: ${r.detail.slice(0, 80)}` : ''})`;
      if (effects > 1) {
        counts.duplicated += effects - 1;
        problem(`duplicated: ${where} created ${effects} times on the device`);
      }
      const runsAfter = taken.get(key) ?? 0;
      if (runsAfter > 0) {
        counts.duplicated += runsAfter;
        problem(`duplicated: ${where} ran ${runsAfter} more time(s) on the device after its VM existed (the host refused the name)`);
      }
      if (found.length > 1) {
        counts.duplicated += found.length - 1;
        problem(`duplicated: ${where} has ${found.length} tasks: ${found.map((t) => t.id).join(', ')}`);
      }
      if (found.length === 0) {
        if (r.outcome === 'accepted') {
          counts.lost++;
          counts.submitted++;
          problem(`lost: ${where} was accepted, but the API has no task for it`);
        } else if (effects > 0) {
          counts.lost++;
          problem(`lost: ${where} has no task, but the device created the VM`);
        }
        continue;
      }
      createdAny = true;
      counts.submitted++;
      const t = found[0]!;
      if (r.outcome === 'accepted' && !r.taskIds?.includes(t.id)) problem(`note: ${where}: the API's task ${t.id} is not among the ids the request returned`);
      if (!FINAL.has(t.state)) {
        counts.stuck++;
        problem(`stuck: ${where}: task ${t.id} still ${t.state}`);
      } else if (t.state === 'succeeded') {
        counts.succeeded++;
        if (effects === 0) {
          counts.lost++;
          problem(`lost: ${where}: task ${t.id} succeeded, but the device has no such VM`);
        }
      } else {
        const reason = `${t.state}: ${t.error?.code ?? 'no code'}`;
        counts.failed[reason] = (counts.failed[reason] ?? 0) + 1;
        if (t.error?.code === 'invalid_spec' && /already|exists|taken|in use/i.test(t.error.message)) {
          // Only this task ever named this VM on this device: it ran a second time (counted
          // above when the host's history says so).
          if (runsAfter === 0) counts.duplicated++;
          problem(`duplicated: ${where}: task ${t.id} failed because its own VM already existed: ${t.error.message}`);
        } else if (effects > 0) {
          // The device did it, the API says it did not: the success was lost on the way.
          counts.lost++;
          problem(`lost: ${where}: task ${t.id} is ${reason}, but the device created the VM`);
        }
      }
    }
    if (r.outcome !== 'accepted' && createdAny) counts.requests.unknownThatCreated++;
  }
  for (const [key] of created) if (!expected.has(key)) {
    counts.lost++;
    problem(`lost: ${key}: a VM on the device that no request asked for`);
  }
  return counts;
}

/** A short name for why a request got no answer (fetch's error, or the status of a 5xx). */
function whyUnanswered(detail: string | undefined): string {
  if (!detail) return 'unknown';
  if (/^HTTP \d+/.test(detail)) return detail;
  if (/aborted|timeout/i.test(detail)) return 'timed out';
  const code = /: ([A-Z_]+)$/.exec(detail)?.[1];
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') return 'connection cut';
  if (code) return `connection ${code}`;
  return detail.slice(0, 40);
}
