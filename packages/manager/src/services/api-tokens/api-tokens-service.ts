import { randomUUID } from 'node:crypto';
import type { ApiToken, CreateApiToken, CreatedApiToken, PageOf, Role, User } from '@pallas/protocol';
import { AppError } from '../../errors.js';
import { hashSecret, newSecret } from '../../security/secrets.js';
import type { Db, Store } from '../../store/store.js';

export const API_TOKEN_PREFIX = 'pat';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const lowerRole = (a: Role, b: Role): Role => (RANK[a] <= RANK[b] ? a : b);
export const roleAtLeast = (role: Role, minimum: Role): boolean => RANK[role] >= RANK[minimum];

/** How stale `last_used_at` may get: one write per token per minute, not one per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

type Row = {
  id: string; name: string; user_id: string; username: string; role: string;
  created_at: string; expires_at: string | null; last_used_at: string | null; revoked_at: string | null;
};

function toApiToken(r: Row): ApiToken {
  return {
    id: r.id, name: r.name, role: r.role as Role, userId: r.user_id, username: r.username, createdAt: r.created_at,
    ...(r.expires_at ? { expiresAt: r.expires_at } : {}),
    ...(r.last_used_at ? { lastUsedAt: r.last_used_at } : {}),
    ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
  };
}

export interface TokenPrincipal {
  /** The owner, with the role the token acts with: the lower of the token's and the owner's. */
  user: User;
  token: { id: string; name: string };
}

/**
 * Named API tokens for automation (`Authorization: Bearer pat_…`). The secret is 256 random
 * bits shown once at creation; the store keeps its SHA-256. A token acts with at most the
 * role it was created with, and never more than its owner has now.
 */
export class ApiTokensService {
  readonly #db: Db;
  readonly #lastUsedWritten = new Map<string, number>();

  constructor(store: Store) {
    this.#db = store.write;
  }

  #select() {
    return this.#db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user_id').select([
      'api_tokens.id', 'api_tokens.name', 'api_tokens.user_id', 'users.username', 'api_tokens.role', 'api_tokens.created_at',
      'api_tokens.expires_at', 'api_tokens.last_used_at', 'api_tokens.revoked_at',
    ]);
  }

  async create(owner: User, input: CreateApiToken): Promise<CreatedApiToken> {
    const role = input.role ?? owner.role;
    if (!roleAtLeast(owner.role, role)) {
      throw new AppError('forbidden', `a token cannot have more than your own role (${owner.role}); asked for ${role}`);
    }
    const token = newSecret(API_TOKEN_PREFIX);
    const now = new Date();
    const row = {
      id: randomUUID(),
      name: input.name,
      token_hash: hashSecret(token),
      user_id: owner.id,
      role,
      created_at: now.toISOString(),
      expires_at: input.expiresInDays ? new Date(now.getTime() + input.expiresInDays * 86_400_000).toISOString() : null,
      last_used_at: null,
      revoked_at: null,
    };
    await this.#db.insertInto('api_tokens').values(row).execute();
    return { ...toApiToken({ ...row, username: owner.username }), token };
  }

  /** The caller's own tokens; an admin may ask for everyone's. Newest first. */
  async list(caller: User, opts: { all?: boolean | undefined; limit?: number | undefined; offset?: number | undefined }): Promise<PageOf<ApiToken>> {
    if (opts.all && caller.role !== 'admin') throw new AppError('forbidden', "only admins may list other users' tokens");
    const limit = opts.limit ?? 50;
    const offset = opts.offset ?? 0;
    let q = this.#select();
    if (!opts.all) q = q.where('api_tokens.user_id', '=', caller.id);
    const rows = await q.orderBy('api_tokens.created_at', 'desc').orderBy('api_tokens.id').limit(limit).offset(offset).execute();
    let count = this.#db.selectFrom('api_tokens').select((eb) => eb.fn.countAll<number>().as('n'));
    if (!opts.all) count = count.where('user_id', '=', caller.id);
    const { n } = await count.executeTakeFirstOrThrow();
    return { items: rows.map(toApiToken), total: Number(n), limit, offset };
  }

  /**
   * Revokes a token: its owner or an admin may. Another user's token is "not found" to a
   * non-admin, so ids cannot be probed. Revoking twice is harmless.
   */
  async revoke(caller: User, id: string): Promise<ApiToken> {
    const row = await this.#select().where('api_tokens.id', '=', id).executeTakeFirst();
    if (!row || (row.user_id !== caller.id && caller.role !== 'admin')) throw new AppError('not_found', `API token ${id} not found`);
    if (!row.revoked_at) {
      row.revoked_at = new Date().toISOString();
      await this.#db.updateTable('api_tokens').set({ revoked_at: row.revoked_at }).where('id', '=', id).execute();
    }
    return toApiToken(row);
  }

  /** The principal behind a `pat_` secret; a clear 401 when it is unknown, revoked or expired. */
  async verify(secret: string): Promise<TokenPrincipal> {
    const row = await this.#db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user_id')
      .select([
        'api_tokens.id', 'api_tokens.name', 'api_tokens.role', 'api_tokens.expires_at', 'api_tokens.revoked_at',
        'users.id as user_id', 'users.username', 'users.role as user_role', 'users.created_at as user_created_at',
      ])
      .where('api_tokens.token_hash', '=', hashSecret(secret))
      .executeTakeFirst();
    if (!row) throw new AppError('unauthorized', 'unknown API token: create one with `pallas api-tokens create <name>` (or in the console under API tokens)');
    if (row.revoked_at) throw new AppError('unauthorized', `API token "${row.name}" was revoked on ${row.revoked_at}`);
    const now = Date.now();
    if (row.expires_at && Date.parse(row.expires_at) <= now) {
      throw new AppError('unauthorized', `API token "${row.name}" expired on ${row.expires_at}`);
    }
    const last = this.#lastUsedWritten.get(row.id) ?? 0;
    if (now - last >= LAST_USED_RESOLUTION_MS) {
      this.#lastUsedWritten.set(row.id, now);
      if (this.#lastUsedWritten.size > 100_000) this.#lastUsedWritten.clear();
      await this.#db.updateTable('api_tokens').set({ last_used_at: new Date(now).toISOString() }).where('id', '=', row.id).execute();
    }
    return {
      user: { id: row.user_id, username: row.username, role: lowerRole(row.role as Role, row.user_role as Role), createdAt: row.user_created_at },
      token: { id: row.id, name: row.name },
    };
  }
}
