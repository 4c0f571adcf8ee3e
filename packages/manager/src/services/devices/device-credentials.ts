import { hashSecret, newSecret, sameHash } from '../../security/secrets.js';
import type { DeviceAuthenticator } from '../../broker/broker.js';
import type { Db, Store } from '../../store/store.js';

/**
 * Per-device MQTT credentials: username and client id are the device id, the password a
 * random 256-bit secret of which only the hash is kept. Hashes are cached so that a fleet
 * reconnecting after a broker restart does not turn into one query per device.
 */
export class DeviceCredentials implements DeviceAuthenticator {
  readonly #db: Db;
  readonly #cache = new Map<string, string>();

  constructor(store: Store) {
    this.#db = store.write;
  }

  /** A fresh secret and its hash; the caller stores the hash with the device row. */
  issue(): { secret: string; hash: string } {
    const secret = newSecret('pds');
    return { secret, hash: hashSecret(secret) };
  }

  async authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<boolean> {
    if (!username || !password || username !== clientId) return false;
    return this.verify(clientId, password.toString('utf8'));
  }

  async verify(deviceId: string, secret: string): Promise<boolean> {
    let hash = this.#cache.get(deviceId);
    if (hash === undefined) {
      const row = await this.#db.selectFrom('devices').select('secret_hash').where('id', '=', deviceId).executeTakeFirst();
      if (!row) return false;
      hash = row.secret_hash;
      this.#cache.set(deviceId, hash);
    }
    return sameHash(hash, hashSecret(secret));
  }

  /** Call after the stored hash changed or the device was removed. */
  forget(deviceId: string): void {
    this.#cache.delete(deviceId);
  }
}
