import type { GroupQuery } from '@pallas/protocol';
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Database } from '../../store/schema.js';

export type DevicePredicate = (eb: ExpressionBuilder<Database, 'devices'>) => Expression<SqlBool>;

/** A glob (`*` any run, `?` one character) as a LIKE pattern, lower-cased, with `\` escaping LIKE's own wildcards. */
export function likeOfGlob(glob: string): string {
  return glob.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

/**
 * The WHERE of a saved query over the devices table: every field given must match. The host
 * build lives in the facts JSON, read with each dialect's JSON operator (both index-free; a
 * group is evaluated per request and per rollout tick, not per message).
 */
export function queryPredicate(query: GroupQuery, dialect: 'sqlite' | 'postgres'): DevicePredicate {
  return (eb) => {
    const all: Array<Expression<SqlBool>> = [];
    for (const tag of query.tags ?? []) {
      all.push(eb('id', 'in', eb.selectFrom('device_tags').select('device_id').where('tag', '=', tag)));
    }
    if (query.hypervisor) all.push(eb('hypervisor_kind', '=', query.hypervisor));
    if (query.agentVersion) all.push(eb('agent_version', '=', query.agentVersion));
    if (query.presence) all.push(eb('presence', '=', query.presence));
    if (query.status) all.push(eb('status', '=', query.status));
    if (query.hostBuild) {
      const build = dialect === 'postgres' ? sql<string>`(facts::json #>> '{hypervisor,build}')` : sql<string>`json_extract(facts, '$.hypervisor.build')`;
      all.push(sql<SqlBool>`${build} = ${query.hostBuild}`);
    }
    if (query.namePattern) {
      // SQLite has no default LIKE escape character; PostgreSQL's is the backslash. Say it.
      all.push(sql<SqlBool>`lower(name) like ${likeOfGlob(query.namePattern)} escape '\\'`);
    }
    return eb.and(all);
  };
}

/** Members of a fixed list: its rows in device_group_members that are still devices. */
export function staticPredicate(groupId: string): DevicePredicate {
  return (eb) => eb('id', 'in', eb.selectFrom('device_group_members').select('device_id').where('group_id', '=', groupId));
}
