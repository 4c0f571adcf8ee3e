/**
 * The broker-accounts port: device credentials kept by an external broker, changed by the
 * managers at run time. The embedded broker has none (it asks the manager for every login);
 * an external broker must check logins itself, so the managers keep its list of device
 * clients in step with the store.
 *
 * Every device client is bound to a client id (the device id), so a credential works only
 * for the device it was made for, and the broker denies by default: a client may do only
 * what its ACLs grant (for Mosquitto: deploy/mosquitto/pallas.acl).
 *
 * A device may have two clients at once during a credential rotation: `<id>` and `<id>.b`
 * (see `slotUsername`), both bound to client id `<id>`; the old one is deleted once the
 * device is seen on the new one.
 */
export interface BrokerAccount {
  username: string;
  /** The client id the broker binds this account to (the device id). */
  clientId: string;
  disabled: boolean;
}

export interface BrokerAccounts {
  /**
   * Creates the client, or replaces its password if it exists (idempotent, so a retried
   * enrollment or a recreated client after a broker restore works). `disabled` creates it
   * unable to log in (a pending device). Default: enabled.
   */
  create(account: { username: string; clientId: string; password: string; disabled?: boolean }): Promise<void>;
  /** Refuses new logins and drops the live connection of a client logged in with it. */
  disable(username: string): Promise<void>;
  enable(username: string): Promise<void>;
  setPassword(username: string, password: string): Promise<void>;
  /** Idempotent: deleting a client that does not exist is not an error. Drops its connection. */
  delete(username: string): Promise<void>;
  /** Every device client (the managers' own and the broker admins are left out). */
  list(): Promise<BrokerAccount[]>;
}

/** The two usernames a device may hold; see BrokerAccounts. */
export function slotUsername(deviceId: string, slot: 'a' | 'b'): string {
  return slot === 'a' ? deviceId : `${deviceId}.b`;
}

/** The device a username belongs to, or null for a name that is not a device slot. */
export function deviceOfUsername(username: string): string | null {
  const id = username.endsWith('.b') ? username.slice(0, -2) : username;
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? id : null;
}

export class BrokerAccountsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerAccountsError';
  }
}
