import type { DeviceStatus } from '@pallas/protocol';
import { hashSecret, newSecret, sameHash } from '../../security/secrets.js';
import type { AuthResult, DeviceAuthenticator } from '../../broker/broker.js';
import type { Db, Store } from '../../store/store.js';

interface Entry {
  hash: string;
  /** The new credential of a rotation in progress, if any. */
  pending: string | null;
  status: DeviceStatus;
}

/** Characters that have a meaning in MQTT topic filters; never part of an identity. */
const WILDCARDS = /[#+\u0000]/;

/**
 * Per-device MQTT credentials: username and client id are the device id, the password a
 * random 256-bit secret of which only the hash is kept. Hashes are cached so that a fleet
 * reconnecting after a broker restart does not turn into one query per device; every change
 * of hash or status goes through `forget`.
 *
 * Rotation: while a rotation is in progress both the current and the pending secret work.
 * The first successful connection with the pending one makes it the only one (`onRotated`).
 */
export class DeviceCredentials implements DeviceAuthenticator {
  readonly #db: Db;
  readonly #cache = new Map<string, Entry>();
  /** Told when a device confirmed a rotated credential by connecting with it. */
  onRotated: (deviceId: string) => void = () => {};

  constructor(store: Store) {
    this.#db = store.write;
  }

  /** A fresh secret and its hash; the caller stores the hash with the device row. */
  issue(): { secret: string; hash: string } {
    const secret = newSecret('pds');
    return { secret, hash: hashSecret(secret) };
  }

  async authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthResult> {
    // A wildcard in a client id or username is never a device; refuse it before any lookup.
    if (WILDCARDS.test(clientId) || (username !== undefined && WILDCARDS.test(username))) return { ok: false, reason: 'client_id_mismatch' };
    if (!username || !password) return { ok: false, reason: 'auth_failed' };
    if (username !== clientId) return { ok: false, reason: 'client_id_mismatch' };
    const entry = await this.#entry(clientId);
    if (!entry) return { ok: false, reason: 'auth_failed' };
    const given = hashSecret(password.toString('utf8'));
    const current = sameHash(entry.hash, given);
    const rotated = !current && entry.pending !== null && sameHash(entry.pending, given);
    if (!current && !rotated) return { ok: false, reason: 'auth_failed' };
    // Only a holder of the credential learns the device is blocked or pending.
    if (entry.status === 'blocked') return { ok: false, reason: 'device_blocked' };
    if (entry.status === 'pending') return { ok: false, reason: 'device_pending' };
    if (rotated) await this.#confirmRotation(clientId, entry.pending!);
    return { ok: true };
  }

  /** True if `secret` is the device's current credential (re-enrollment uses this). */
  async verify(deviceId: string, secret: string): Promise<boolean> {
    const entry = await this.#entry(deviceId);
    return !!entry && sameHash(entry.hash, hashSecret(secret));
  }

  /** Call after the stored hash or status changed or the device was removed. */
  forget(deviceId: string): void {
    this.#cache.delete(deviceId);
  }

  async #entry(deviceId: string): Promise<Entry | undefined> {
    let entry = this.#cache.get(deviceId);
    if (entry === undefined) {
      const row = await this.#db.selectFrom('devices').select(['secret_hash', 'pending_secret_hash', 'status'])
        .where('id', '=', deviceId).executeTakeFirst();
      if (!row) return undefined;
      entry = { hash: row.secret_hash, pending: row.pending_secret_hash, status: row.status as DeviceStatus };
      this.#cache.set(deviceId, entry);
    }
    return entry;
  }

  async #confirmRotation(deviceId: string, pending: string): Promise<void> {
    // Conditional on the pending hash still being the one we checked: a second rotation
    // started meanwhile must not be overwritten by this one.
    await this.#db.updateTable('devices').set({ secret_hash: pending, pending_secret_hash: null, updated_at: new Date().toISOString() })
      .where('id', '=', deviceId).where('pending_secret_hash', '=', pending).execute();
    this.forget(deviceId);
    this.onRotated(deviceId);
  }
}
