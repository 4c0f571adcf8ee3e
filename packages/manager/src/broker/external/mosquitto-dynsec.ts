import { randomUUID } from 'node:crypto';
import { BrokerAccountsError, deviceOfUsername, type BrokerAccount, type BrokerAccounts } from '../accounts.js';
import type { ControlLink } from './mqtt-broker.js';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

/** The role every device client holds: what a device may subscribe to. */
export const DEVICE_ROLE = 'pallas-device';
/**
 * Why a role at all: Mosquitto's acl_file never refuses a SUBSCRIBE (2.0.11 grants every
 * filter and checks read access only on delivery), so without it a device could hold any
 * number of filters anywhere (`#`, `$SYS/#`, made-up ones). The plugin checks a role's ACLs
 * before it defers to the acl_file, highest priority first, the first match deciding: the
 * three command topics and `cmd/#` are allowed, anything deeper under `cmd/` and anything
 * else is refused (SUBACK 0x80). A role shared by all devices cannot name a device's own id
 * (no `%c` in 2.0.11's plugin ACLs), so the id level stays `+`: a device may still subscribe
 * to `pallas/v1/d/<anything>/cmd/#` — it receives nothing there (the acl_file's read check),
 * but Mosquitto keeps each such filter (docs/security.md, "External broker").
 */
const DEVICE_ROLE_ACLS = [
  { acltype: 'subscribePattern', topic: 'pallas/v1/d/+/cmd/control', priority: 4, allow: true },
  { acltype: 'subscribePattern', topic: 'pallas/v1/d/+/cmd/task', priority: 4, allow: true },
  { acltype: 'subscribePattern', topic: 'pallas/v1/d/+/cmd/task-ack', priority: 4, allow: true },
  { acltype: 'subscribePattern', topic: 'pallas/v1/d/+/cmd/+/#', priority: 3, allow: false },
  { acltype: 'subscribePattern', topic: 'pallas/v1/d/+/cmd/#', priority: 2, allow: true },
  { acltype: 'subscribePattern', topic: '#', priority: 1, allow: false },
] as const;

/** A client as the plugin's listClients (verbose) and getClient describe it. */
interface ClientInfo {
  username: string;
  clientid?: string;
  disabled?: boolean;
  roles?: Array<{ rolename: string }>;
}

const hasDeviceRole = (c: ClientInfo | undefined) => c?.roles?.some((r) => r.rolename === DEVICE_ROLE) === true;

interface DynsecResponse {
  command: string;
  correlationData?: string;
  error?: string;
  data?: unknown;
}

interface Waiting {
  resolve: (response: DynsecResponse) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Device accounts in Mosquitto's dynamic-security plugin (shipped with Mosquitto 2), driven
 * over its control topic. Each command carries a random correlation id; the plugin answers on
 * the response topic, which every manager subscribed to it receives, so each manager keeps
 * only the answers it is waiting for.
 *
 * Each device is a client bound to its client id, with the shared role `pallas-device`
 * (DEVICE_ROLE_ACLS), which only refuses subscriptions outside the protocol's. What a device
 * may publish and receive comes from the broker's `acl_file` (deploy/mosquitto/pallas.acl),
 * whose `pattern` lines use `%c`: the plugin's own ACLs do not substitute `%c`/`%u` in 2.0.11,
 * and the plugin's default access (all deny) makes it defer to the acl_file, which was checked
 * on 2.0.11 (docs/security.md, "External broker"). The role is made by the managers when it is
 * missing, so a broker set up before it existed needs no step by hand.
 */
export class MosquittoDynsec implements BrokerAccounts {
  readonly #link: ControlLink;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<string, Waiting>();
  #subscribed: Promise<void> | undefined;
  #deviceRole: Promise<void> | undefined;

  /** `timeoutMs`: how long to wait for the plugin's answer. Default: 10 s. */
  constructor(link: ControlLink, options: { timeoutMs?: number } = {}) {
    this.#link = link;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async create(account: { username: string; clientId: string; password: string; disabled?: boolean }): Promise<void> {
    const { username, clientId, password } = account;
    await this.#ensureDeviceRole();
    const created = await this.#command({ command: 'createClient', username, password, clientid: clientId, roles: [{ rolename: DEVICE_ROLE }] }, { allow: /already exists/i });
    if (created.error) {
      // It exists (a retried enrollment, or a client re-created after a restore): make it match.
      await this.#command({ command: 'setClientPassword', username, password });
      await this.#command({ command: 'setClientId', username, clientid: clientId });
      await this.#addDeviceRole(username);
      if (!account.disabled) await this.enable(username);
    }
    if (account.disabled) await this.disable(username);
  }

  async disable(username: string): Promise<void> {
    // The plugin also closes the live connection of a client logged in with this username.
    await this.#command({ command: 'disableClient', username });
  }

  async enable(username: string): Promise<void> {
    await this.#command({ command: 'enableClient', username });
  }

  async setPassword(username: string, password: string): Promise<void> {
    await this.#command({ command: 'setClientPassword', username, password });
  }

  async delete(username: string): Promise<void> {
    await this.#command({ command: 'deleteClient', username }, { allow: /not found/i });
  }

  /**
   * Also gives the device role to device clients without it (made before the role existed):
   * the managers list at every start (reconciliation), so every device has it after one.
   */
  async list(): Promise<BrokerAccount[]> {
    await this.#ensureDeviceRole();
    const accounts: BrokerAccount[] = [];
    const roleless: string[] = [];
    const pageSize = 1000;
    for (let offset = 0; ; offset += pageSize) {
      const res = await this.#command({ command: 'listClients', verbose: true, count: pageSize, offset });
      const data = res.data as { totalCount?: number; clients?: ClientInfo[] } | undefined;
      const clients = data?.clients ?? [];
      for (const c of clients) {
        if (deviceOfUsername(c.username) === null) continue; // managers, admins
        accounts.push({ username: c.username, clientId: c.clientid ?? '', disabled: c.disabled === true });
        if (!hasDeviceRole(c)) roleless.push(c.username);
      }
      if (clients.length < pageSize) break;
    }
    for (const username of roleless) await this.#addDeviceRole(username);
    return accounts;
  }

  /** Makes the device role with its ACLs once per manager (idempotent: other managers may have made it). */
  #ensureDeviceRole(): Promise<void> {
    this.#deviceRole ??= (async () => {
      await this.#command({ command: 'createRole', rolename: DEVICE_ROLE }, { allow: /already exists/i });
      for (const acl of DEVICE_ROLE_ACLS) await this.#command({ command: 'addRoleACL', rolename: DEVICE_ROLE, ...acl }, { allow: /already exists/i });
    })().catch((err: unknown) => {
      this.#deviceRole = undefined;
      throw err;
    });
    return this.#deviceRole;
  }

  /**
   * Gives a client the device role (the plugin then drops its live connection, so that the
   * role applies). 2.0.11 answers "Internal error" when the client holds the role already (a
   * retried enrollment, or another manager was first): the client is looked at to tell.
   */
  async #addDeviceRole(username: string): Promise<void> {
    const added = await this.#command({ command: 'addClientRole', username, rolename: DEVICE_ROLE }, { allow: /internal error/i });
    if (!added.error) return;
    const got = await this.#command({ command: 'getClient', username });
    if (!hasDeviceRole((got.data as { client?: ClientInfo } | undefined)?.client)) {
      throw new BrokerAccountsError(`the broker refused addClientRole ${DEVICE_ROLE} for ${username}: ${added.error}`);
    }
  }

  async #command(command: Record<string, unknown> & { command: string }, options: { allow?: RegExp } = {}): Promise<DynsecResponse> {
    await this.#ensureSubscribed();
    const correlationData = randomUUID();
    const answer = new Promise<DynsecResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(correlationData);
        reject(new BrokerAccountsError(`the broker's dynamic-security plugin did not answer ${command.command} within ${this.#timeoutMs} ms (is the plugin loaded and the manager allowed on ${CONTROL_TOPIC}?)`));
      }, this.#timeoutMs);
      this.#waiting.set(correlationData, { resolve, reject, timer });
    });
    try {
      await this.#link.publish(CONTROL_TOPIC, JSON.stringify({ commands: [{ ...command, correlationData }] }));
    } catch (err) {
      const waiting = this.#waiting.get(correlationData);
      this.#waiting.delete(correlationData);
      if (waiting) clearTimeout(waiting.timer);
      throw new BrokerAccountsError(`could not send ${command.command} to the broker: ${(err as Error).message}`, { cause: err });
    }
    const response = await answer;
    if (response.error && !options.allow?.test(response.error)) {
      const who = typeof command.username === 'string' ? ` for ${command.username}` : '';
      throw new BrokerAccountsError(`the broker refused ${command.command}${who}: ${response.error}`);
    }
    return response;
  }

  #ensureSubscribed(): Promise<void> {
    this.#subscribed ??= this.#link.subscribe(RESPONSE_TOPIC, (_topic, payload) => this.#onResponse(payload)).catch((err: unknown) => {
      this.#subscribed = undefined;
      throw new BrokerAccountsError(`could not subscribe to ${RESPONSE_TOPIC}: ${(err as Error).message}`, { cause: err });
    });
    return this.#subscribed;
  }

  #onResponse(payload: Buffer): void {
    let parsed: { responses?: DynsecResponse[] };
    try {
      parsed = JSON.parse(payload.toString('utf8')) as { responses?: DynsecResponse[] };
    } catch {
      return;
    }
    for (const response of parsed.responses ?? []) {
      const id = response.correlationData;
      const waiting = id ? this.#waiting.get(id) : undefined;
      if (!waiting || !id) continue; // another manager's answer
      this.#waiting.delete(id);
      clearTimeout(waiting.timer);
      waiting.resolve(response);
    }
  }
}
