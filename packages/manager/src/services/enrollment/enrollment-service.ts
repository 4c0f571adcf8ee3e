import { randomUUID } from 'node:crypto';
import type { CreateEnrollmentToken, CreatedEnrollmentToken, EnrollRequest, EnrollResponse, EnrollStatusRequest, EnrollStatusResponse, EnrollmentToken, PageOf } from '@pallas/protocol';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { AppError, notFound } from '../../errors.js';
import { hashSecret, newSecret, sameHash } from '../../security/secrets.js';
import { boundStatement, slot } from '../../store/bound-statement.js';
import { GroupCommit } from '../../store/group-commit.js';
import type { Database } from '../../store/schema.js';
import type { Db, Store } from '../../store/store.js';
import type { DeviceCredentials } from '../devices/device-credentials.js';
import type { DeviceBrokerAccounts } from '../devices/device-broker-accounts.js';

type TokenRow = {
  id: string; name: string; expires_at: string; max_uses: number; uses: number; revoked: number; created_at: string; created_by: string;
};
const TOKEN_COLUMNS = ['id', 'name', 'expires_at', 'max_uses', 'uses', 'revoked', 'created_at', 'created_by'] as const;
const toToken = (r: TokenRow): EnrollmentToken => ({
  id: r.id,
  name: r.name,
  expiresAt: r.expires_at,
  maxUses: Number(r.max_uses),
  uses: Number(r.uses),
  revoked: Number(r.revoked) === 1,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/**
 * The statements of an enrollment, compiled once per store (see boundStatement): an enrollment
 * burst runs them thousands of times, and building and compiling each with Kysely at every call
 * cost more than SQLite took to run them. The re-enrollment's update stays built per call: it
 * is rare.
 */
function enrollStatements(db: Db) {
  return {
    // The token and the device id's row, if any, in one statement: on PostgreSQL each statement
    // is a round trip whose socket write was the manager's largest cost per enrollment. The
    // device's columns are NULL when the id is new (its secret_hash is never NULL otherwise).
    tokenAndDevice: boundStatement(
      db.selectFrom('enrollment_tokens')
        .leftJoin('devices', (join) => join.on('devices.id', '=', slot('id')))
        .select([
          'enrollment_tokens.id', 'expires_at', 'max_uses', 'uses', 'revoked',
          'devices.secret_hash', 'devices.status', 'devices.enrollment_key_hash', 'devices.enrollment_token_id', 'devices.last_seen_at',
        ])
        .where('token_hash', '=', slot('hash'))
        .compile(),
      ['id', 'hash'],
    ),
    insert: boundStatement(
      db.insertInto('devices').values({
        id: slot('id'),
        name: slot('name'),
        secret_hash: slot('secret'),
        presence: 'offline',
        last_seen_at: null,
        enrolled_at: slot('now'),
        updated_at: slot('now'),
        enrollment_token_id: slot('token'),
        hypervisor_kind: slot('kind'),
        agent_version: slot('agent'),
        facts: slot('facts'),
        vms: null,
        status_seq: 0,
        status: slot('status'),
        pending_secret_hash: null,
        enrollment_key_hash: slot('key'),
        flags: null,
        last_address: null,
        mqtt_username: null,
        pending_mqtt_username: null,
      }).compile(),
      ['id', 'name', 'secret', 'now', 'token', 'kind', 'agent', 'facts', 'status', 'key'],
    ),
    use: boundStatement(
      db.updateTable('enrollment_tokens').set({ uses: sql`uses + 1` }).where('id', '=', slot('token')).where('uses', '<', sql<number>`max_uses`).compile(),
      ['token'],
    ),
  };
}

export interface EnrollmentSettings {
  keepaliveSec: number;
  statusIntervalSec: number;
  /** New devices start `pending` until an operator approves them. */
  requireApproval?: boolean;
  /** PEM of the CA agents pin for MQTT over TLS (null: the manager has none of its own). */
  caCertificate?: string | null;
  /** The artifact-manifest signing key handed to devices so they can pin it. */
  signingKey?: EnrollResponse['signingKey'];
}

/**
 * Enrollment tokens and device enrollment. A token only lets a device enroll: it never
 * works on the broker. Enrolling gives the device its own credential.
 */
export class EnrollmentService {
  readonly #db: Db;
  readonly #group: GroupCommit | undefined;
  readonly #credentials: DeviceCredentials;
  readonly #settings: EnrollmentSettings;
  readonly #logger: Logger;
  readonly #brokerAccounts: DeviceBrokerAccounts | undefined;
  #compiled: ReturnType<typeof enrollStatements> | undefined;

  constructor(deps: {
    store: Store; credentials: DeviceCredentials; settings: EnrollmentSettings; logger: Logger;
    /** External broker: the device's broker client is made with its new secret. */
    brokerAccounts?: DeviceBrokerAccounts | undefined;
  }) {
    this.#db = deps.store.write;
    this.#group = deps.store.dialect === 'sqlite' ? new GroupCommit(deps.store.write) : undefined;
    this.#brokerAccounts = deps.brokerAccounts;
    this.#credentials = deps.credentials;
    this.#settings = deps.settings;
    this.#logger = deps.logger;
  }

  async createToken(createdBy: string, input: CreateEnrollmentToken): Promise<CreatedEnrollmentToken> {
    const token = newSecret('pet');
    const now = new Date();
    const row: TokenRow = {
      id: randomUUID(),
      name: input.name ?? '',
      expires_at: new Date(now.getTime() + (input.ttlSec ?? 86400) * 1000).toISOString(),
      max_uses: input.maxUses ?? 1,
      uses: 0,
      revoked: 0,
      created_at: now.toISOString(),
      created_by: createdBy,
    };
    await this.#db.insertInto('enrollment_tokens').values({ ...row, token_hash: hashSecret(token) }).execute();
    return { ...toToken(row), token };
  }

  async listTokens(limit = 50, offset = 0): Promise<PageOf<EnrollmentToken>> {
    const rows = await this.#db.selectFrom('enrollment_tokens').select([...TOKEN_COLUMNS])
      .orderBy('created_at', 'desc').limit(limit).offset(offset).execute();
    const { n } = await this.#db.selectFrom('enrollment_tokens').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: rows.map(toToken), total: Number(n), limit, offset };
  }

  async revokeToken(id: string): Promise<void> {
    const res = await this.#db.updateTable('enrollment_tokens').set({ revoked: 1 }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw notFound('enrollment token', id);
  }

  /**
   * Enrolls a device. A new id becomes a device; an id the manager knows is re-enrolled
   * only if the request proves it holds that device's current secret, so that a token
   * holder cannot take over another device by claiming its id.
   *
   * Or its enrollment key: the `secret` a first enrollment carries, a random key the agent
   * keeps in its state dir before it asks (docs/security.md, "A lost enrollment answer"). When
   * the answer is lost on the way (the link dropped after the commit), the agent asks again
   * with the same key and the same token, and gets a new credential: the earlier one never
   * reached it. Without this it met `device_id_conflict` and could never enroll. The key is
   * accepted only with the token that enrolled the device, and only until the device first
   * connects (then it has its credential); a retry counts no use of the token.
   */
  async enroll(req: EnrollRequest, mqttUrl: string): Promise<EnrollResponse> {
    const { secret, hash } = this.#credentials.issue();
    const now = new Date().toISOString();
    const status = await this.#transaction(async (tx): Promise<'active' | 'pending'> => {
      const status = this.#settings.requireApproval ? 'pending' : 'active';
      const statements = this.#statements();
      const given = req.secret === undefined ? null : hashSecret(req.secret);
      // Everything inside the transaction goes through `tx`: SQLite has one connection.
      const token = (await tx.executeQuery(statements.tokenAndDevice.bind({ hash: hashSecret(req.token), id: req.deviceId }))).rows[0];
      if (!token) throw new AppError('enrollment_token_invalid', 'unknown enrollment token');
      if (Number(token.revoked) === 1) throw new AppError('enrollment_token_invalid', 'enrollment token has been revoked');
      if (token.expires_at <= now) throw new AppError('enrollment_token_invalid', 'enrollment token has expired');

      if (token.secret_hash !== null) {
        const holdsSecret = given !== null && sameHash(token.secret_hash, given);
        const retriesFirst = given !== null && token.enrollment_key_hash !== null && sameHash(token.enrollment_key_hash, given)
          && token.enrollment_token_id === token.id && token.last_seen_at === null;
        if (!holdsSecret && !retriesFirst) {
          throw new AppError('device_id_conflict', `device ${req.deviceId} is already enrolled; re-enrolling it needs its current credential`);
        }
        // Re-enrolling keeps the device's status: a blocked device stays blocked. Proof by the
        // credential retires the enrollment key; a retry keeps it, for another lost answer.
        await tx.updateTable('devices')
          .set({ secret_hash: hash, pending_secret_hash: null, updated_at: now, ...(holdsSecret ? { enrollment_key_hash: null } : {}) })
          .where('id', '=', req.deviceId).execute();
        const existing = token.status as 'active' | 'pending' | 'blocked';
        await this.#brokerAccounts?.enrolled(tx, req.deviceId, secret, existing);
        if (retriesFirst) this.#logger.info({ device: req.deviceId }, 'enrollment asked again with its enrollment key (the first answer was lost); new credential issued');
        return existing === 'pending' ? 'pending' : 'active';
      }
      await tx.executeQuery(statements.insert.bind({
        id: req.deviceId,
        name: req.facts.hostname,
        secret: hash,
        now,
        token: token.id,
        kind: req.facts.hypervisor.kind,
        agent: req.facts.agentVersion,
        facts: JSON.stringify(req.facts),
        status,
        key: given,
      }));
      await this.#brokerAccounts?.enrolled(tx, req.deviceId, secret, status);
      // Count the use with a conditional update so concurrent enrollments cannot overrun
      // max_uses. Last, just before the commit: it locks the token's row until then, and every
      // enrollment with the same token waits for that lock. Taken before the broker's client
      // was made (a round trip to an external broker), it made a fleet's enrollments run one
      // at a time across all managers, and agents timed out waiting (then their retry met
      // their own committed enrollment: device_id_conflict). A use refused here rolls the
      // device back; the broker client made for it is removed by the next reconcile.
      const used = await tx.executeQuery(statements.use.bind({ token: token.id }));
      if (Number(used.numAffectedRows ?? 0) === 0) throw new AppError('enrollment_token_invalid', 'enrollment token has been used up');
      return status;
    });
    this.#credentials.forget(req.deviceId);
    this.#logger.info({ device: req.deviceId, hostname: req.facts.hostname }, 'device enrolled');
    return {
      deviceId: req.deviceId,
      mqtt: { url: mqttUrl, clientId: req.deviceId, username: req.deviceId, password: secret, keepaliveSec: this.#settings.keepaliveSec },
      statusIntervalSec: this.#settings.statusIntervalSec,
      ...(this.#settings.caCertificate ? { caCertificate: this.#settings.caCertificate } : {}),
      ...(status === 'pending' ? { status } : {}),
      ...(this.#settings.signingKey ? { signingKey: this.#settings.signingKey } : {}),
    };
  }

  #statements(): ReturnType<typeof enrollStatements> {
    this.#compiled ??= enrollStatements(this.#db);
    return this.#compiled;
  }

  /**
   * The enrollment's transaction. On SQLite the enrollments of a burst share commits
   * (GroupCommit: each in a savepoint of its own, settled only after the shared commit), which
   * was most of what SQLite spent per enrollment; what each sees and decides is what its own
   * transaction would have. On PostgreSQL each has its own transaction, as before: enrollments
   * run side by side on the pool, and only the token row's lock orders them.
   */
  #transaction<T>(work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#group ? this.#group.run(work) : this.#db.transaction().execute(work);
  }

  /**
   * A device the broker refused asks whether its credential is still good (POST
   * /enroll/status). Only a holder of the device's current or pending secret gets an answer
   * other than `credential_invalid`; on an external broker its broker client is made again.
   */
  async status(req: EnrollStatusRequest): Promise<EnrollStatusResponse> {
    if (this.#brokerAccounts) {
      const outcome = await this.#brokerAccounts.repair(req.deviceId, req.secret);
      if (outcome === 'credential_invalid') throw new AppError('credential_invalid', 'this credential is not valid for this device');
      return { state: outcome };
    }
    const row = await this.#db.selectFrom('devices').select(['status', 'secret_hash', 'pending_secret_hash']).where('id', '=', req.deviceId).executeTakeFirst();
    const given = hashSecret(req.secret);
    if (!row || !(sameHash(row.secret_hash, given) || (row.pending_secret_hash !== null && sameHash(row.pending_secret_hash, given)))) {
      throw new AppError('credential_invalid', 'this credential is not valid for this device');
    }
    return { state: row.status === 'active' ? 'retry' : (row.status as 'pending' | 'blocked') };
  }
}
