import type { FleetBucket, FleetSummary } from '@pallas/protocol';
import type { Db, Store } from '../../store/store.js';
import { taskIdFloor } from '../tasks/task-id.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * The fleet at a glance: device counts by presence, hypervisor and agent version, and task
 * counts by state. Each figure is one grouped query on an indexed or small column, so the
 * overview stays cheap however large the fleet (it reads from the replica when there is one).
 */
export class FleetSummaryService {
  readonly #read: Db;

  constructor(deps: { store: Store }) {
    this.#read = deps.store.read;
  }

  async summary(now = new Date()): Promise<FleetSummary> {
    const [presence, hypervisors, agentVersions, active, recent] = await Promise.all([
      this.#countDevicesBy('presence'),
      this.#countDevicesBy('hypervisor_kind'),
      this.#countDevicesBy('agent_version'),
      this.#read.selectFrom('tasks').select(['state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('state', 'in', ['queued', 'sent', 'running']).groupBy('state').execute(),
      // Task ids start with their creation time, so "created in the last 24 h" is a range on
      // the primary key rather than a scan of created_at.
      this.#read.selectFrom('tasks').select(['state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('id', '>=', taskIdFloor(now.getTime() - DAY_MS))
        .where('state', 'in', ['succeeded', 'failed', 'cancelled', 'timed_out']).groupBy('state').execute(),
    ]);
    const count = (rows: Array<{ state: string; n: number | string | bigint }>, state: string): number =>
      Number(rows.find((r) => r.state === state)?.n ?? 0);
    const online = presence.find((b) => b.value === 'online')?.count ?? 0;
    const total = presence.reduce((sum, b) => sum + b.count, 0);
    return {
      devices: { total, online, offline: total - online },
      tasks: {
        queued: count(active, 'queued'),
        sent: count(active, 'sent'),
        running: count(active, 'running'),
        last24h: {
          succeeded: count(recent, 'succeeded'),
          failed: count(recent, 'failed'),
          cancelled: count(recent, 'cancelled'),
          timedOut: count(recent, 'timed_out'),
        },
      },
      hypervisors,
      agentVersions,
      generatedAt: now.toISOString(),
    };
  }

  /** Devices by presence (the /metrics gauge). */
  byPresence(): Promise<FleetBucket[]> {
    return this.#countDevicesBy('presence');
  }

  async #countDevicesBy(column: 'presence' | 'hypervisor_kind' | 'agent_version'): Promise<FleetBucket[]> {
    const rows = await this.#read.selectFrom('devices')
      .select([`${column} as value`, (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(column).execute();
    return rows
      .map((r) => ({ value: r.value, count: Number(r.n) }))
      .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
  }
}
