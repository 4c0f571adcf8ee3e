import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EnrollResponse } from '@pallas/protocol';
import { checkDeviceIdentity, checkEnrollResponse, checkRetiredMarker } from '../checks/index.js';
import { AgentError, AgentErrorCodes, describeError } from '../errors.js';
import type { DeviceIdentity, RetiredMarker } from './state-schemas.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export type { DeviceIdentity, RetiredMarker } from './state-schemas.js';
export type Credential = EnrollResponse;

export const DEVICE_FILE = 'device.json';
export const CREDENTIAL_FILE = 'credential.json';
export const RETIRED_FILE = 'retired.json';
export const NEXT_CREDENTIAL_FILE = 'credential.next.json';
export const ENROLLMENT_KEY_FILE = 'enrollment-key';

/**
 * The agent's state dir (mode 0700):
 * - `device.json` (0600) — {deviceId, createdAt}; created on first start, then only read.
 * - `credential.json` (0600) — the manager's EnrollResponse (MQTT url, username, password).
 *   Deleted on decommission; its absence is what makes the agent enroll.
 * - `enrollment-key` (0600) — a random key, written before the first enrollment request and
 *   sent with each attempt, removed once the credential is stored: a retry after a lost
 *   answer proves with it that it is the same device asking again (docs/security.md).
 * - `retired.json` (0600) — {reason, at}; written on decommission or when the broker refuses
 *   the credential. Its presence stops the agent from starting (and so from re-enrolling by
 *   itself) until an operator asks for a re-enrollment, which removes it.
 *
 * A corrupt file is an error, never a reason to mint a new identity: a device that silently
 * changed its id would show up as a new device and orphan the old one.
 */
export class StateDir {
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
  }

  /** Reads the device identity, creating the directory and a new identity on first start. */
  async loadOrCreateIdentity(): Promise<DeviceIdentity> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    const existing = await this.#readJson(DEVICE_FILE);
    if (existing !== undefined) {
      const res = await checkDeviceIdentity.validate(existing);
      if (!res.ok) throw this.#invalid(DEVICE_FILE, res.error);
      // Ids are canonical lower-case UUIDs (the manager refuses others): fold a hand-written one.
      return { deviceId: res.value.deviceId.toLowerCase(), createdAt: res.value.createdAt };
    }
    const identity: DeviceIdentity = { deviceId: randomUUID(), createdAt: new Date().toISOString() };
    await writeFileAtomic(join(this.path, DEVICE_FILE), `${JSON.stringify(identity, null, 2)}\n`, 0o600);
    return identity;
  }

  /** The stored credential, or null when the device has not enrolled (or was decommissioned). */
  async readCredential(deviceId: string): Promise<Credential | null> {
    const raw = await this.#readJson(CREDENTIAL_FILE);
    if (raw === undefined) return null;
    const res = await checkEnrollResponse.validate(raw);
    if (!res.ok) throw this.#invalid(CREDENTIAL_FILE, `${res.error}; delete it to enroll again`);
    if (res.value.deviceId !== deviceId) {
      throw this.#invalid(CREDENTIAL_FILE, `it belongs to device ${res.value.deviceId}, not ${deviceId}`);
    }
    return res.value;
  }

  async writeCredential(credential: Credential): Promise<void> {
    await writeFileAtomic(join(this.path, CREDENTIAL_FILE), `${JSON.stringify(credential, null, 2)}\n`, 0o600);
  }

  /**
   * `credential.next.json` (0600): the new password (and username, on an external broker) of a credential rotation until the broker
   * has accepted it; then it replaces the one in credential.json and this file goes.
   */
  async writeNextPassword(password: string, username?: string): Promise<void> {
    await writeFileAtomic(join(this.path, NEXT_CREDENTIAL_FILE), `${JSON.stringify({ password, ...(username ? { username } : {}) })}\n`, 0o600);
  }

  /** The rotation's new password, and its username when it changes too (external broker). */
  async readNextPassword(): Promise<{ password: string; username?: string } | undefined> {
    const raw = await this.#readJson(NEXT_CREDENTIAL_FILE).catch(() => undefined);
    const { password, username } = (raw ?? {}) as { password?: unknown; username?: unknown };
    if (typeof password !== 'string' || password.length === 0) return undefined;
    return typeof username === 'string' && username.length > 0 ? { password, username } : { password };
  }

  async clearNextPassword(): Promise<void> {
    await rm(join(this.path, NEXT_CREDENTIAL_FILE), { force: true });
  }

  async deleteCredential(): Promise<void> {
    await rm(join(this.path, CREDENTIAL_FILE), { force: true });
  }

  /**
   * The key this device's enrollment attempts carry, made and stored on the first call: it
   * must be on disk before the first request, so that an agent restarted after a lost answer
   * still sends the key the manager stored. An unreadable one is replaced (the retry it was
   * for cannot be proven then; the manager answers `device_id_conflict`, as without a key).
   */
  async enrollmentKey(): Promise<string> {
    const path = join(this.path, ENROLLMENT_KEY_FILE);
    const stored = await readFile(path, 'utf8').then((t) => t.trim(), () => '');
    if (/^[A-Za-z0-9_-]{43}$/.test(stored)) return stored;
    const key = randomBytes(32).toString('base64url');
    await writeFileAtomic(path, `${key}\n`, 0o600);
    return key;
  }

  async clearEnrollmentKey(): Promise<void> {
    await rm(join(this.path, ENROLLMENT_KEY_FILE), { force: true });
  }

  /** Marks the device retired. Written atomically, like every file here. */
  async writeRetired(marker: RetiredMarker): Promise<void> {
    await writeFileAtomic(join(this.path, RETIRED_FILE), `${JSON.stringify(marker, null, 2)}\n`, 0o600);
  }

  /**
   * The retired marker, or null when the device is not retired. A corrupt marker is an error,
   * not "not retired": a decommissioned device must not come back because a file got mangled.
   */
  async readRetired(): Promise<RetiredMarker | null> {
    const raw = await this.#readJson(RETIRED_FILE);
    if (raw === undefined) return null;
    const res = await checkRetiredMarker.validate(raw);
    if (!res.ok) throw this.#invalid(RETIRED_FILE, `${res.error}; start with --re-enroll to enroll the device again`);
    return { reason: res.value.reason, at: res.value.at };
  }

  async clearRetired(): Promise<void> {
    await rm(join(this.path, RETIRED_FILE), { force: true });
  }

  /** Parsed JSON, or undefined when the file does not exist. */
  async #readJson(name: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(join(this.path, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AgentError(AgentErrorCodes.STATE_INVALID, `cannot read ${join(this.path, name)}: ${describeError(err)}`, { cause: err });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw this.#invalid(name, 'not valid JSON');
    }
  }

  #invalid(name: string, why: string): AgentError {
    return new AgentError(AgentErrorCodes.STATE_INVALID, `${join(this.path, name)} is invalid: ${why}`);
  }
}
