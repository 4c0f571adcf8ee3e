import { randomBytes, randomUUID } from 'node:crypto';
import type { CreateUser, PageOf, Role, UpdateUser, User } from '@pallas/protocol';
import { AppError, notFound } from '../../errors.js';
import { hashPassword, verifyPassword } from '../../security/passwords.js';
import type { Db, Store } from '../../store/store.js';

type UserRow = { id: string; username: string; role: string; created_at: string };
const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, role: r.role as Role, createdAt: r.created_at });

// A constant hash to compare against when the username is unknown, so that a login for a
// missing user takes as long as one with a wrong password.
let decoyHash: Promise<string> | undefined;

export class UsersService {
  readonly #db: Db;
  constructor(store: Store) {
    this.#db = store.write;
  }

  /**
   * Creates the first admin when there are no users. Returns the password only when this
   * call generated it, so the caller can print it once; nothing stores it in clear.
   */
  async bootstrapAdmin(password?: string): Promise<{ created: boolean; generatedPassword?: string }> {
    const any = await this.#db.selectFrom('users').select('id').limit(1).executeTakeFirst();
    if (any) return { created: false };
    const generated = password ? undefined : randomBytes(18).toString('base64url');
    await this.create({ username: 'admin', password: password ?? generated!, role: 'admin' });
    return generated ? { created: true, generatedPassword: generated } : { created: true };
  }

  async list(limit = 50, offset = 0): Promise<PageOf<User>> {
    const rows = await this.#db.selectFrom('users').select(['id', 'username', 'role', 'created_at'])
      .orderBy('username').limit(limit).offset(offset).execute();
    const { n } = await this.#db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: rows.map(toUser), total: Number(n), limit, offset };
  }

  async get(id: string): Promise<User> {
    const row = await this.#db.selectFrom('users').select(['id', 'username', 'role', 'created_at'])
      .where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('user', id);
    return toUser(row);
  }

  async create(input: CreateUser): Promise<User> {
    const existing = await this.#db.selectFrom('users').select('id').where('username', '=', input.username).executeTakeFirst();
    if (existing) throw new AppError('conflict', `user "${input.username}" already exists`);
    const now = new Date().toISOString();
    const row = { id: randomUUID(), username: input.username, role: input.role, created_at: now };
    await this.#db.insertInto('users')
      .values({ ...row, password_hash: await hashPassword(input.password), updated_at: now })
      .execute();
    return toUser(row);
  }

  async update(id: string, patch: UpdateUser): Promise<User> {
    const user = await this.get(id);
    if (patch.role && patch.role !== 'admin' && user.role === 'admin') await this.#ensureAnotherAdmin(id);
    await this.#db.updateTable('users')
      .set({
        ...(patch.role ? { role: patch.role } : {}),
        ...(patch.password ? { password_hash: await hashPassword(patch.password) } : {}),
        updated_at: new Date().toISOString(),
      })
      .where('id', '=', id)
      .execute();
    if (patch.password) await this.#db.deleteFrom('sessions').where('user_id', '=', id).execute();
    return this.get(id);
  }

  async remove(id: string): Promise<void> {
    const user = await this.get(id);
    if (user.role === 'admin') await this.#ensureAnotherAdmin(id);
    await this.#db.deleteFrom('sessions').where('user_id', '=', id).execute();
    await this.#db.deleteFrom('api_tokens').where('user_id', '=', id).execute();
    await this.#db.deleteFrom('users').where('id', '=', id).execute();
  }

  /** Checks a username and password; null when either is wrong (callers must not say which). */
  async authenticate(username: string, password: string): Promise<User | null> {
    const row = await this.#db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!row) {
      decoyHash ??= hashPassword(randomBytes(16).toString('hex'));
      await verifyPassword(password, await decoyHash);
      return null;
    }
    return (await verifyPassword(password, row.password_hash)) ? toUser(row) : null;
  }

  // The fleet must never be left without an administrator.
  async #ensureAnotherAdmin(exceptId: string): Promise<void> {
    const other = await this.#db.selectFrom('users').select('id')
      .where('role', '=', 'admin').where('id', '!=', exceptId).limit(1).executeTakeFirst();
    if (!other) throw new AppError('conflict', 'cannot remove or demote the last admin');
  }
}
