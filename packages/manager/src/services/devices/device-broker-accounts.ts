import type { DeviceStatus } from '@pallas/protocol';
import type { Logger } from 'pino';
import { BrokerAccountsError, deviceOfUsername, slotUsername, type BrokerAccounts } from '../../broker/accounts.js';
import { AppError } from '../../errors.js';
import { hashSecret, sameHash } from '../../security/secrets.js';
import type { Db, Store } from '../../store/store.js';

/** What a device that the broker refused learns from `repair` (POST /enroll/status). */
export type RepairOutcome = 'retry' | 'pending' | 'blocked' | 'credential_invalid';

/**
 * Keeps an external broker's device clients in step with the device registry: the store is
 * the truth, the broker's clients follow it. Used only with an external broker (the embedded
 * one checks each login against the store).
 *
 * A device has one client per credential it may use: its live one (`devices.mqtt_username`,
 * null meaning the device id) and, during a rotation, the new one (`pending_mqtt_username`,
 * the other slot). Both are bound to the device id as client id. The old client is deleted
 * when the device says, in its presence message, that it logged in with the new username.
 *
 * The store keeps only secrets' hashes, so a client lost by the broker cannot be made again
 * from the store: the device brings its secret to `repair`, which checks it against the hash.
 */
export class DeviceBrokerAccounts {
  readonly #db: Db;
  readonly #accounts: BrokerAccounts;
  readonly #logger: Logger;
  /** Told when a device confirmed a rotated credential (the audit log hears of it). */
  onRotated: (deviceId: string) => void = () => {};

  constructor(deps: { store: Store; accounts: BrokerAccounts; logger: Logger }) {
    this.#db = deps.store.write;
    this.#accounts = deps.accounts;
    this.#logger = deps.logger;
  }

  /**
   * A device enrolled (or re-enrolled) with `secret`: its first-slot client gets it, enabled
   * only if the device is active. Called inside the enrollment's transaction (`tx`), so a
   * broker that cannot be reached fails the enrollment instead of leaving a device whose
   * credential works nowhere.
   */
  async enrolled(tx: Db, deviceId: string, secret: string, status: DeviceStatus): Promise<void> {
    const username = slotUsername(deviceId, 'a');
    await unavailableIfBroker(async () => {
      await this.#accounts.create({ username, clientId: deviceId, password: secret, disabled: status !== 'active' });
      await this.#accounts.delete(slotUsername(deviceId, 'b'));
    });
    await tx.updateTable('devices').set({ mqtt_username: null, pending_mqtt_username: null }).where('id', '=', deviceId).execute();
  }

  /** Approve / unblock enable the device's clients; block disables them, which drops its connection. */
  async statusChanged(deviceId: string, status: DeviceStatus): Promise<void> {
    for (const username of await this.#usernamesOf(deviceId)) {
      if (status === 'active') await this.#accounts.enable(username);
      else await this.#accounts.disable(username);
    }
  }

  /** A rotation issued `secret`: it goes to the slot the device is not using. Returns its username. */
  async rotationStarted(deviceId: string, secret: string): Promise<string> {
    const row = await this.#db.selectFrom('devices').select(['mqtt_username', 'status']).where('id', '=', deviceId).executeTakeFirstOrThrow();
    const live = row.mqtt_username ?? slotUsername(deviceId, 'a');
    const next = live === slotUsername(deviceId, 'a') ? slotUsername(deviceId, 'b') : slotUsername(deviceId, 'a');
    // A pending device's new credential must not let it in before it is approved either.
    await unavailableIfBroker(() => this.#accounts.create({ username: next, clientId: deviceId, password: secret, disabled: row.status !== 'active' }));
    await this.#db.updateTable('devices').set({ pending_mqtt_username: next }).where('id', '=', deviceId).execute();
    return next;
  }

  /**
   * The device said (presence) which username it logged in with. If that is the pending one,
   * the rotation is confirmed: the new hash becomes the only one and the old client goes.
   * Every manager hears presence; the conditional update lets exactly one of them do it.
   */
  async seen(deviceId: string, username: string): Promise<void> {
    const row = await this.#db.selectFrom('devices').select(['mqtt_username', 'pending_mqtt_username']).where('id', '=', deviceId).executeTakeFirst();
    if (!row || row.pending_mqtt_username !== username) return;
    const old = row.mqtt_username ?? slotUsername(deviceId, 'a');
    const res = await this.#db.updateTable('devices')
      .set((eb) => ({
        secret_hash: eb.ref('pending_secret_hash') as never,
        pending_secret_hash: null,
        mqtt_username: username === slotUsername(deviceId, 'a') ? null : username,
        pending_mqtt_username: null,
        updated_at: new Date().toISOString(),
      }))
      .where('id', '=', deviceId).where('pending_mqtt_username', '=', username).where('pending_secret_hash', 'is not', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return;
    if (old !== username) await this.#accounts.delete(old);
    this.#logger.info({ device: deviceId, username }, 'device confirmed its rotated credential on the broker');
    this.onRotated(deviceId);
  }

  /** The device was decommissioned: both its clients go (the broker drops a live connection). */
  async removed(deviceId: string): Promise<void> {
    await this.#accounts.delete(slotUsername(deviceId, 'a'));
    await this.#accounts.delete(slotUsername(deviceId, 'b'));
  }

  /**
   * A device the broker refused asks whether its credential is still good. A secret that
   * matches the live or pending hash re-creates that client (the broker may have lost it:
   * restored from an old backup, deleted by hand); anything else is `credential_invalid`.
   */
  async repair(deviceId: string, secret: string): Promise<RepairOutcome> {
    const row = await this.#db.selectFrom('devices')
      .select(['status', 'secret_hash', 'pending_secret_hash', 'mqtt_username', 'pending_mqtt_username'])
      .where('id', '=', deviceId).executeTakeFirst();
    if (!row) return 'credential_invalid';
    const given = hashSecret(secret);
    let username: string | null = null;
    if (sameHash(row.secret_hash, given)) username = row.mqtt_username ?? slotUsername(deviceId, 'a');
    else if (row.pending_secret_hash && row.pending_mqtt_username && sameHash(row.pending_secret_hash, given)) username = row.pending_mqtt_username;
    if (!username) return 'credential_invalid';
    const status = row.status as DeviceStatus;
    await unavailableIfBroker(() => this.#accounts.create({ username: username!, clientId: deviceId, password: secret, disabled: status !== 'active' }));
    this.#logger.info({ device: deviceId, username, status }, 'broker client of a refused device made again');
    return status === 'active' ? 'retry' : status;
  }

  /**
   * At start: clients of no device are deleted; the others are enabled or disabled as their
   * device's status says. Missing clients are left to `repair` (only the device has its secret).
   * Clients are listed before devices are read, so a device enrolled meanwhile is seen; one
   * whose enrollment is still uncommitted on another manager may lose its client here, and
   * gets it back through `repair` when its agent is refused.
   */
  async reconcile(): Promise<{ deleted: number; enabled: number; disabled: number }> {
    const counts = { deleted: 0, enabled: 0, disabled: 0 };
    const accounts = await this.#accounts.list();
    const rows = await this.#db.selectFrom('devices').select(['id', 'status', 'mqtt_username', 'pending_mqtt_username']).execute();
    const devices = new Map(rows.map((r) => [r.id, r]));
    for (const account of accounts) {
      const deviceId = deviceOfUsername(account.username);
      const device = deviceId ? devices.get(deviceId) : undefined;
      const known = device && [device.mqtt_username ?? slotUsername(device.id, 'a'), device.pending_mqtt_username].includes(account.username);
      if (!device || !known || account.clientId !== device.id) {
        await this.#accounts.delete(account.username);
        counts.deleted++;
      } else if (device.status === 'active' && account.disabled) {
        await this.#accounts.enable(account.username);
        counts.enabled++;
      } else if (device.status !== 'active' && !account.disabled) {
        await this.#accounts.disable(account.username);
        counts.disabled++;
      }
    }
    this.#logger.info({ clients: accounts.length, ...counts }, 'reconciled the broker\'s device clients with the store');
    return counts;
  }

  async #usernamesOf(deviceId: string): Promise<string[]> {
    const row = await this.#db.selectFrom('devices').select(['mqtt_username', 'pending_mqtt_username']).where('id', '=', deviceId).executeTakeFirst();
    if (!row) return [];
    return [row.mqtt_username ?? slotUsername(deviceId, 'a'), ...(row.pending_mqtt_username ? [row.pending_mqtt_username] : [])];
  }
}

/** A broker that does not answer is a 503 for the agent (it retries), not a 500. */
async function unavailableIfBroker<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BrokerAccountsError) throw new AppError('unavailable', `the MQTT broker could not be updated: ${err.message}`, { cause: err });
    throw err;
  }
}
