import { PRESENCES, type FailingDevices, type FailingDevicesQuery, type FleetBucket, type FleetSummary, type Presence } from '@pallas/protocol';
import { AppError } from '../../errors.js';
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
    const unresponsive = presence.find((b) => b.value === 'unresponsive')?.count ?? 0;
    const total = presence.reduce((sum, b) => sum + b.count, 0);
    return {
      devices: { total, online, unresponsive, offline: total - online - unresponsive },
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

  /**
   * The devices whose tasks failed or timed out most since `from`: a range of the
   * `tasks.finished_at` index (the tasks that ended in the range, not the whole table), grouped
   * by device; then, for the few devices shown, their commonest error code.
   */
  async failingDevices(q: FailingDevicesQuery, now = new Date()): Promise<FailingDevices> {
    const from = q.from ? new Date(q.from) : new Date(now.getTime() - DAY_MS);
    if (!(from < now)) throw new AppError('invalid_request', '`from` must be in the past');
    const since = from.toISOString();
    const failed = () => this.#read.selectFrom('tasks').innerJoin('devices', 'devices.id', 'tasks.device_id')
      .where('tasks.finished_at', '>=', since).where('tasks.state', 'in', ['failed', 'timed_out']);
    const rows = await failed()
      .select(['tasks.device_id as id', 'devices.name', 'devices.presence',
        (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.max<string>('tasks.finished_at').as('last')])
      .groupBy(['tasks.device_id', 'devices.name', 'devices.presence'])
      .orderBy('n', 'desc').orderBy('last', 'desc').limit(q.limit ?? 10).execute();
    const codes = rows.length === 0 ? [] : await failed()
      .select(['tasks.device_id as id', 'tasks.error_code as code', (eb) => eb.fn.countAll<number>().as('n')])
      .where('tasks.device_id', 'in', rows.map((r) => r.id))
      .groupBy(['tasks.device_id', 'tasks.error_code']).execute();
    const topCode = (id: string): string | null => codes.filter((c) => c.id === id && c.code !== null)
      .sort((a, b) => Number(b.n) - Number(a.n) || String(a.code).localeCompare(String(b.code)))[0]?.code ?? null;
    return {
      from: since,
      to: now.toISOString(),
      items: rows.map((r) => ({ deviceId: r.id, name: r.name, presence: r.presence as Presence, failed: Number(r.n), lastFailedAt: r.last, topErrorCode: topCode(r.id) })),
    };
  }

  /** Devices by presence, every state present (0 when none): the `/metrics` gauge. */
  async devicesByPresence(): Promise<Record<Presence, number>> {
    const buckets = await this.#countDevicesBy('presence');
    return Object.fromEntries(PRESENCES.map((p) => [p, buckets.find((b) => b.value === p)?.count ?? 0])) as Record<Presence, number>;
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
