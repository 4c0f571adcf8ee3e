import { deviceTopic, type ControlMessage, type Device, type DeviceStatus, type DevicePatch, type DeviceQuery, type DeviceSort, type HostFacts, type PageOf, type Presence, type Vm } from '@pallas/protocol';
import { sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import { AppError, notFound } from '../../errors.js';
import type { Broker } from '../../broker/broker.js';
import type { Db, Store } from '../../store/store.js';
import type { DeviceCredentials } from './device-credentials.js';
import type { DeviceBrokerAccounts } from './device-broker-accounts.js';
import type { StatusBuffer } from './status-buffer.js';
import type { DevicePredicate } from '../groups/group-filter.js';

type DeviceRow = {
  id: string;
  name: string;
  presence: string;
  last_seen_at: string | null;
  enrolled_at: string;
  facts: string | null;
  vms: string | null;
  status: string;
  flags: string | null;
};
const COLUMNS = ['id', 'name', 'presence', 'last_seen_at', 'enrolled_at', 'facts', 'vms', 'status', 'flags'] as const;

/**
 * Raised on read, never stored: another device has the same name (two agents enrolled from
 * hosts with the same hostname). Renaming one clears it (docs/cli.md#devices).
 */
export const DUPLICATE_NAME_FLAG = 'duplicate_name';

function toDevice(row: DeviceRow, tags: string[], duplicate = false): Device {
  return {
    id: row.id,
    name: row.name,
    tags,
    presence: row.presence as Presence,
    status: row.status as DeviceStatus,
    flags: [...(row.flags ? (JSON.parse(row.flags) as string[]) : []), ...(duplicate ? [DUPLICATE_NAME_FLAG] : [])],
    lastSeenAt: row.last_seen_at,
    enrolledAt: row.enrolled_at,
    facts: row.facts ? (JSON.parse(row.facts) as HostFacts) : null,
    vms: row.vms ? (JSON.parse(row.vms) as Vm[]) : [],
  };
}

/**
 * The column behind each sort key. A device never seen sorts as the oldest on both dialects
 * (SQLite and PostgreSQL disagree on where NULLs go).
 */
const SORT_COLUMNS = {
  name: sql`name`,
  lastSeenAt: sql`coalesce(last_seen_at, '')`,
  enrolledAt: sql`enrolled_at`,
  presence: sql`presence`,
} as const;

function sortOf(sort: DeviceSort = 'name'): { column: (typeof SORT_COLUMNS)[keyof typeof SORT_COLUMNS]; direction: 'asc' | 'desc' } {
  const descending = sort.startsWith('-');
  const key = (descending ? sort.slice(1) : sort) as keyof typeof SORT_COLUMNS;
  return { column: SORT_COLUMNS[key], direction: descending ? 'desc' : 'asc' };
}

/** The tags of a listing's row (ordered by tag in SQL, as `#tagsOf` orders them). */
function tagList(json: string | null): string[] {
  return json ? (JSON.parse(json) as string[]) : [];
}

/** How long a decommissioned device has to receive its last command before it is cut off. */
const DECOMMISSION_GRACE_MS = 500;

/** The device registry: what operators list, rename, tag and decommission. */
export class DevicesService {
  readonly #write: Db;
  readonly #read: Db;
  readonly #broker: Broker;
  readonly #credentials: DeviceCredentials;
  readonly #status: StatusBuffer;
  readonly #logger: Logger;
  readonly #onDecommissioned: (id: string) => Promise<void>;
  readonly #onCutOff: (device: Device) => void;
  readonly #brokerAccounts: DeviceBrokerAccounts | undefined;
  /** A listing's row's tags (of page row `p`) as one JSON array text, NULL or '[]' when none. */
  readonly #tagsColumn: RawBuilder<string | null>;

  constructor(deps: {
    /** External broker: device clients follow block, approve, rotation and decommission. */
    brokerAccounts?: DeviceBrokerAccounts | undefined;
    store: Store; broker: Broker; credentials: DeviceCredentials; status: StatusBuffer; logger: Logger;
    /** What else must happen when a device goes (its tasks end, the live stream hears of it). */
    onDecommissioned?: (id: string) => Promise<void>;
    /** A device was blocked: it is offline now (the live stream and the delivery view hear of it). */
    onCutOff?: (device: Device) => void;
  }) {
    this.#write = deps.store.write;
    this.#read = deps.store.read;
    this.#broker = deps.broker;
    this.#credentials = deps.credentials;
    this.#status = deps.status;
    this.#logger = deps.logger;
    this.#onDecommissioned = deps.onDecommissioned ?? (async () => {});
    this.#onCutOff = deps.onCutOff ?? (() => {});
    this.#brokerAccounts = deps.brokerAccounts;
    this.#tagsColumn = deps.store.dialect === 'postgres'
      ? sql<string | null>`(select cast(json_agg(t.tag order by t.tag) as text) from device_tags t where t.device_id = p.id)`
      // SQLite aggregates in the order rows come, so they come ordered.
      : sql<string | null>`(select json_group_array(tag) from (select t.tag from device_tags t where t.device_id = p.id order by t.tag))`;
  }

  /** `where` narrows the listing further (a group's members). */
  async list(query: DeviceQuery, where?: DevicePredicate): Promise<PageOf<Device>> {
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    let q = this.#read.selectFrom('devices');
    if (where) q = q.where(where);
    if (query.presence) q = q.where('presence', '=', query.presence);
    if (query.status) q = q.where('status', '=', query.status);
    if (query.hypervisor) q = q.where('hypervisor_kind', '=', query.hypervisor);
    if (query.name) {
      const pattern = `%${query.name.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      // SQLite has no default LIKE escape character; PostgreSQL's is the backslash. Say it.
      q = q.where(sql<boolean>`lower(name) like ${pattern} escape '\\'`);
    }
    if (query.tag) {
      const tag = query.tag;
      q = q.where('id', 'in', (eb) => eb.selectFrom('device_tags').select('device_id').where('tag', '=', tag));
    }
    const { column, direction } = sortOf(query.sort);
    // One round of statements, not three in turn: each page row carries its tags and whether
    // its name is shared, and the count runs beside it. On PostgreSQL every round trip waits
    // for the database's process and then for the manager's event loop, both busy while the
    // fleet reports, and the page used to wait for three of them in sequence (docs/benchmarks.md).
    // The page is cut first and the per-row subqueries run on its rows only: PostgreSQL
    // evaluates a cheap-looking subquery below the sort, once for every row that matched
    // (all 5,000 for a search that matches them all: 55 ms instead of 1).
    const page = q.select([...COLUMNS]).orderBy(column, direction).orderBy('id', direction).limit(limit).offset(offset).as('p');
    const [rows, count] = await Promise.all([
      this.#read.selectFrom(page).selectAll('p')
        .select([this.#tagsColumn.as('tag_list'), sql<boolean | number>`exists (select 1 from devices d2 where d2.name = p.name and d2.id <> p.id)`.as('shared_name')])
        .orderBy(column, direction).orderBy('id', direction).execute(),
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map((r) => toDevice(r, tagList(r.tag_list), Boolean(r.shared_name))), total: Number(count.n), limit, offset };
  }

  async get(id: string, db: Db = this.#read): Promise<Device> {
    const row = await db.selectFrom('devices').select([...COLUMNS]).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('device', id);
    const tags = await this.#tagsOf([id], db);
    const duplicates = await this.#sharedNames([row.name], db);
    return toDevice(row, tags.get(id) ?? [], duplicates.has(row.name));
  }

  /** Which of these names more than one device has. */
  async #sharedNames(names: string[], db: Db): Promise<Set<string>> {
    const unique = [...new Set(names)];
    const out = new Set<string>();
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await db.selectFrom('devices').select('name').where('name', 'in', unique.slice(i, i + 500))
        .groupBy('name').having((eb) => eb.fn.countAll(), '>', 1).execute();
      for (const r of rows) out.add(r.name);
    }
    return out;
  }

  async patch(id: string, patch: DevicePatch): Promise<Device> {
    await this.get(id, this.#write);
    await this.#write.transaction().execute(async (tx) => {
      if (patch.name !== undefined) {
        await tx.updateTable('devices').set({ name: patch.name, updated_at: new Date().toISOString() }).where('id', '=', id).execute();
      }
      if (patch.tags !== undefined) {
        await tx.deleteFrom('device_tags').where('device_id', '=', id).execute();
        if (patch.tags.length > 0) {
          await tx.insertInto('device_tags').values(patch.tags.map((tag) => ({ device_id: id, tag }))).execute();
        }
      }
    });
    return this.get(id, this.#write);
  }

  /**
   * Removes a device: its credential stops working at once (cache and row gone), the agent
   * is told to stop, and its connection is closed shortly after so that the command can
   * still reach it. An offline device learns it when its next connection is refused.
   */
  async decommission(id: string): Promise<void> {
    await this.get(id, this.#write);
    await this.#write.deleteFrom('devices').where('id', '=', id).execute();
    this.#credentials.forget(id);
    this.#status.discard(id);
    await this.#onDecommissioned(id);
    const message: ControlMessage = { type: 'decommission', reason: 'decommissioned by an operator' };
    try {
      await this.#broker.publish(deviceTopic(id, 'cmd/control'), JSON.stringify(message), { qos: 1 });
    } catch (err) {
      this.#logger.warn({ err, device: id }, 'could not send decommission command');
    }
    setTimeout(() => {
      this.#broker.disconnect(id);
      // On an external broker, deleting the clients is what cuts the device off.
      this.#brokerAccounts?.removed(id).catch((err: unknown) => this.#logger.error({ err, device: id }, 'could not delete the device\'s broker clients; the next reconciliation will'));
    }, DECOMMISSION_GRACE_MS).unref();
    this.#logger.info({ device: id }, 'device decommissioned');
  }

  /**
   * Approve (pending → active), block (→ blocked) or unblock (blocked → active). Blocking
   * takes effect at once: the cached credential is dropped, so the next connection attempt is
   * refused, and the open connection is closed now.
   */
  async setStatus(id: string, action: 'approve' | 'block' | 'unblock'): Promise<Device> {
    const device = await this.get(id, this.#write);
    const from: Record<typeof action, DeviceStatus[]> = { approve: ['pending'], block: ['active', 'pending', 'blocked'], unblock: ['blocked'] };
    if (!from[action].includes(device.status)) {
      throw new AppError('device_state_conflict', `cannot ${action} device ${id}: its status is ${device.status}`);
    }
    const to: DeviceStatus = action === 'block' ? 'blocked' : 'active';
    // A blocked device is offline from now on, whatever broker cut it off and whether or not
    // its last will reaches us (an external broker may not send it for a disabled client).
    await this.#write.updateTable('devices').set({ status: to, updated_at: new Date().toISOString(), ...(to === 'blocked' ? { presence: 'offline' } : {}) })
      .where('id', '=', id).execute();
    this.#credentials.forget(id);
    if (to === 'blocked') this.#broker.disconnect(id);
    // External broker: disabling the client refuses new logins and drops the live connection.
    await this.#brokerAccounts?.statusChanged(id, to);
    this.#logger.info({ device: id, action }, `device ${to}`);
    const updated = await this.get(id, this.#write);
    if (to === 'blocked') this.#onCutOff(updated);
    return updated;
  }

  /**
   * Starts a credential rotation: a new secret is stored as pending and sent to the device on
   * its own command topic. Both work until the device connects with the new one (see
   * DeviceCredentials); a device that is offline gets it with its next connection (QoS 1,
   * persistent session). Clears the clone flag: the copy a clone holds is about to die.
   */
  async rotateCredential(id: string): Promise<Device> {
    const device = await this.get(id, this.#write);
    if (device.status === 'blocked') throw new AppError('device_state_conflict', `device ${id} is blocked; unblock it first`);
    const { secret, hash } = this.#credentials.issue();
    const flags = device.flags.filter((f) => f !== 'credential_clone_suspected' && f !== DUPLICATE_NAME_FLAG);
    await this.#write.updateTable('devices')
      .set({ pending_secret_hash: hash, flags: flags.length ? JSON.stringify(flags) : null, updated_at: new Date().toISOString() })
      .where('id', '=', id).execute();
    this.#credentials.forget(id);
    // External broker: the new secret gets its own client (the other username slot), so the
    // old one keeps working until the device is seen on the new one.
    const username = await this.#brokerAccounts?.rotationStarted(id, secret);
    const message: ControlMessage = { type: 'rotate-credential', password: secret, ...(username ? { username } : {}) };
    await this.#broker.publish(deviceTopic(id, 'cmd/control'), JSON.stringify(message), { qos: 1 });
    this.#logger.info({ device: id }, 'credential rotation started');
    return this.get(id, this.#write);
  }

  /** Adds a flag (idempotent). */
  async addFlag(id: string, flag: string): Promise<void> {
    const row = await this.#write.selectFrom('devices').select('flags').where('id', '=', id).executeTakeFirst();
    if (!row) return;
    const flags: string[] = row.flags ? (JSON.parse(row.flags) as string[]) : [];
    if (flags.includes(flag)) return;
    flags.push(flag);
    await this.#write.updateTable('devices').set({ flags: JSON.stringify(flags) }).where('id', '=', id).execute();
  }

  /** Marks every device offline: used when the embedded broker starts with no sessions. */
  async markAllOffline(): Promise<void> {
    await this.#write.updateTable('devices').set({ presence: 'offline' }).where('presence', 'in', ['online', 'unresponsive']).execute();
  }

  /**
   * Devices the store says are online. A manager joining others on an external broker starts
   * from this: those devices stay connected to the broker and will not say so again.
   */
  async onlineIds(): Promise<string[]> {
    // Unresponsive devices are still connected: commands wait in their sessions.
    const rows = await this.#write.selectFrom('devices').select('id').where('presence', 'in', ['online', 'unresponsive']).where('status', '=', 'active').execute();
    return rows.map((r) => r.id);
  }

  async #tagsOf(ids: string[], db: Db): Promise<Map<string, string[]>> {
    const map = new Map<string, string[]>();
    if (ids.length === 0) return map;
    const rows = await db.selectFrom('device_tags').select(['device_id', 'tag']).where('device_id', 'in', ids).orderBy('tag').execute();
    for (const r of rows) {
      const list = map.get(r.device_id);
      if (list) list.push(r.tag);
      else map.set(r.device_id, [r.tag]);
    }
    return map;
  }
}
