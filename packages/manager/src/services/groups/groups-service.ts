import { randomBytes } from 'node:crypto';
import type { CreateGroup, Group, GroupKind, GroupQuery, PageOf, UpdateGroup } from '@pallas/protocol';
import type { Selectable } from 'kysely';
import { AppError, notFound } from '../../errors.js';
import type { DeviceGroupsTable } from '../../store/schema.js';
import type { Db, Store } from '../../store/store.js';
import { queryPredicate, staticPredicate, type DevicePredicate } from './group-filter.js';

type GroupRow = Selectable<DeviceGroupsTable>;

const newGroupId = (): string => `grp_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;

/**
 * Named sets of devices: a fixed list, or a saved query evaluated whenever it is read (so a
 * device that starts matching is a member from then on). Tasks and rollouts take a group as
 * their target; a rollout with dynamic membership re-reads it on every tick.
 */
export class GroupsService {
  readonly #write: Db;
  readonly #read: Db;
  readonly #dialect: Store['dialect'];

  constructor(store: Store) {
    this.#write = store.write;
    this.#read = store.read;
    this.#dialect = store.dialect;
  }

  async create(body: CreateGroup, by: string): Promise<Group> {
    const kind = kindOf(body);
    if (await this.#byName(body.name)) throw new AppError('conflict', `a group named "${body.name}" exists already`);
    if (body.deviceIds) await this.#checkDevices(body.deviceIds);
    const now = new Date().toISOString();
    const row: GroupRow = {
      id: newGroupId(), name: body.name, description: body.description ?? null, kind,
      query: body.query ? JSON.stringify(body.query) : null, created_by: by, created_at: now, updated_at: now,
    };
    await this.#write.transaction().execute(async (tx) => {
      await tx.insertInto('device_groups').values(row).execute();
      await insertMembers(tx, row.id, body.deviceIds ?? []);
    });
    return this.#toGroup(row, this.#write);
  }

  async list(limit = 50, offset = 0): Promise<PageOf<Group>> {
    const [rows, count] = await Promise.all([
      this.#read.selectFrom('device_groups').selectAll().orderBy('name').limit(limit).offset(offset).execute(),
      this.#read.selectFrom('device_groups').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: await Promise.all(rows.map((r) => this.#toGroup(r, this.#read))), total: Number(count.n), limit, offset };
  }

  /** By id, or by name (operators type names). */
  async get(idOrName: string, db: Db = this.#read): Promise<Group> {
    return this.#toGroup(await this.#row(idOrName, db), db);
  }

  async update(idOrName: string, patch: UpdateGroup): Promise<Group> {
    const row = await this.#row(idOrName, this.#write);
    if (row.kind === 'static' && patch.query) throw new AppError('invalid_request', `group ${row.name} is a fixed list: give deviceIds, not query`);
    if (row.kind === 'query' && patch.deviceIds) throw new AppError('invalid_request', `group ${row.name} is a saved query: give query, not deviceIds`);
    if (patch.name && patch.name !== row.name && (await this.#byName(patch.name))) throw new AppError('conflict', `a group named "${patch.name}" exists already`);
    if (patch.deviceIds) await this.#checkDevices(patch.deviceIds);
    const now = new Date().toISOString();
    await this.#write.transaction().execute(async (tx) => {
      await tx.updateTable('device_groups').set({
        updated_at: now,
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.query !== undefined ? { query: JSON.stringify(patch.query) } : {}),
      }).where('id', '=', row.id).execute();
      if (patch.deviceIds) {
        await tx.deleteFrom('device_group_members').where('group_id', '=', row.id).execute();
        await insertMembers(tx, row.id, patch.deviceIds);
      }
    });
    return this.get(row.id, this.#write);
  }

  /** Refused while a running or paused rollout targets the group (it reads the group on every tick). */
  async delete(idOrName: string): Promise<Group> {
    const row = await this.#row(idOrName, this.#write);
    const active = await this.#write.selectFrom('rollouts').select(['id', 'target']).where('state', 'in', ['running', 'paused']).execute();
    const user = active.find((r) => (JSON.parse(r.target) as { groupId?: string }).groupId === row.id);
    if (user) throw new AppError('conflict', `group ${row.name} is the target of rollout ${user.id}; abort it first`);
    const group = await this.#toGroup(row, this.#write);
    await this.#write.transaction().execute(async (tx) => {
      await tx.deleteFrom('device_group_members').where('group_id', '=', row.id).execute();
      await tx.deleteFrom('device_groups').where('id', '=', row.id).execute();
    });
    return group;
  }

  /** The predicate selecting the group's members from `devices` (for listings that page). */
  async predicate(idOrName: string, db: Db = this.#read): Promise<DevicePredicate> {
    return this.#predicateOf(await this.#row(idOrName, db));
  }

  /** Every member's id, by name then id: the order rollout waves take them in. */
  async memberIds(idOrName: string, db: Db = this.#write): Promise<string[]> {
    const where = this.#predicateOf(await this.#row(idOrName, db));
    const rows = await db.selectFrom('devices').select('id').where(where).orderBy('name').orderBy('id').execute();
    return rows.map((r) => r.id);
  }

  /** The id of a group named by id or name (404 if none). */
  async idOf(idOrName: string, db: Db = this.#write): Promise<string> {
    return (await this.#row(idOrName, db)).id;
  }

  #predicateOf(row: GroupRow): DevicePredicate {
    return row.kind === 'static' ? staticPredicate(row.id) : queryPredicate(JSON.parse(row.query!) as GroupQuery, this.#dialect);
  }

  async #row(idOrName: string, db: Db): Promise<GroupRow> {
    const row = (await db.selectFrom('device_groups').selectAll().where('id', '=', idOrName).executeTakeFirst()) ?? (await this.#byName(idOrName, db));
    if (!row) throw notFound('group', idOrName);
    return row;
  }

  #byName(name: string, db: Db = this.#write): Promise<GroupRow | undefined> {
    return db.selectFrom('device_groups').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async #checkDevices(ids: readonly string[]): Promise<void> {
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const r of await this.#write.selectFrom('devices').select('id').where('id', 'in', ids.slice(i, i + 500)).execute()) known.add(r.id);
    }
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new AppError('invalid_request', `${unknown.length} unknown device(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
  }

  async #toGroup(row: GroupRow, db: Db): Promise<Group> {
    const count = await db.selectFrom('devices').where(this.#predicateOf(row)).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return {
      id: row.id, name: row.name, description: row.description, kind: row.kind as GroupKind,
      query: row.query ? (JSON.parse(row.query) as GroupQuery) : null, deviceCount: Number(count.n),
      createdBy: row.created_by, createdAt: row.created_at, updatedAt: row.updated_at,
    };
  }
}

function kindOf(body: CreateGroup): GroupKind {
  if ((body.deviceIds === undefined) === (body.query === undefined)) throw new AppError('invalid_request', 'body: give exactly one of deviceIds (a fixed list) or query (a saved query)');
  if (body.query && Object.keys(body.query).length === 0) throw new AppError('invalid_request', 'query: give at least one condition (an empty query would match every device)');
  return body.deviceIds ? 'static' : 'query';
}

async function insertMembers(tx: Db, groupId: string, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    if (chunk.length > 0) await tx.insertInto('device_group_members').values(chunk.map((device_id) => ({ group_id: groupId, device_id }))).execute();
  }
}
