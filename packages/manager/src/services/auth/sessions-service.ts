import { randomUUID } from 'node:crypto';
import type { LoginResponse, Role, User } from '@pallas/protocol';
import { AppError } from '../../errors.js';
import { hashSecret, newSecret } from '../../security/secrets.js';
import type { Db, Store } from '../../store/store.js';
import type { UsersService } from '../users/users-service.js';

/**
 * Login sessions as opaque bearer tokens. Only the token's hash is stored, so a copy of the
 * database does not let anyone act as a user; deleting the row revokes it at once.
 */
export class SessionsService {
  readonly #db: Db;
  readonly #users: UsersService;
  readonly #ttlSec: number;

  constructor(store: Store, users: UsersService, ttlSec: number) {
    this.#db = store.write;
    this.#users = users;
    this.#ttlSec = ttlSec;
  }

  async login(username: string, password: string): Promise<LoginResponse & { token: string }> {
    const user = await this.#users.authenticate(username, password);
    if (!user) throw new AppError('invalid_credentials', 'wrong username or password');
    const token = newSecret('pls');
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.#ttlSec * 1000).toISOString();
    await this.#db.insertInto('sessions').values({
      id: randomUUID(),
      token_hash: hashSecret(token),
      user_id: user.id,
      kind: 'session',
      name: null,
      created_at: now.toISOString(),
      expires_at: expiresAt,
    }).execute();
    return { token, expiresAt, user };
  }

  /** The user behind a bearer token, or null when it is unknown or expired. */
  async verify(token: string): Promise<User | null> {
    const row = await this.#db.selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['users.id', 'users.username', 'users.role', 'users.created_at', 'sessions.expires_at'])
      .where('sessions.token_hash', '=', hashSecret(token))
      .executeTakeFirst();
    if (!row || row.expires_at <= new Date().toISOString()) return null;
    return { id: row.id, username: row.username, role: row.role as Role, createdAt: row.created_at };
  }

  async logout(token: string): Promise<void> {
    await this.#db.deleteFrom('sessions').where('token_hash', '=', hashSecret(token)).execute();
  }

  /** Drops expired sessions; run now and then so the table does not grow without bound. */
  async prune(): Promise<void> {
    await this.#db.deleteFrom('sessions').where('expires_at', '<=', new Date().toISOString()).execute();
  }
}
