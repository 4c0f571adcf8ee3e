import { randomUUID } from 'node:crypto';
import { BrokerAccountsError, deviceOfUsername, type BrokerAccount, type BrokerAccounts } from '../accounts.js';
import type { ControlLink } from './mqtt-broker.js';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

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
 * Only authentication lives here: each device is a client bound to its client id, with no
 * role. What a device may publish and subscribe comes from the broker's `acl_file`
 * (deploy/mosquitto/pallas.acl), whose `pattern` lines use `%c`: the plugin's own ACLs do not
 * substitute `%c`/`%u` in 2.0.11, and the plugin's default access (all deny) makes it defer to
 * the acl_file, which was checked on 2.0.11 (docs/security.md, "External broker").
 */
export class MosquittoDynsec implements BrokerAccounts {
  readonly #link: ControlLink;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<string, Waiting>();
  #subscribed: Promise<void> | undefined;

  /** `timeoutMs`: how long to wait for the plugin's answer. Default: 10 s. */
  constructor(link: ControlLink, options: { timeoutMs?: number } = {}) {
    this.#link = link;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async create(account: { username: string; clientId: string; password: string; disabled?: boolean }): Promise<void> {
    const { username, clientId, password } = account;
    const created = await this.#command({ command: 'createClient', username, password, clientid: clientId }, { allow: /already exists/i });
    if (created.error) {
      // It exists (a retried enrollment, or a client re-created after a restore): make it match.
      await this.#command({ command: 'setClientPassword', username, password });
      await this.#command({ command: 'setClientId', username, clientid: clientId });
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

  async list(): Promise<BrokerAccount[]> {
    const accounts: BrokerAccount[] = [];
    const pageSize = 1000;
    for (let offset = 0; ; offset += pageSize) {
      const res = await this.#command({ command: 'listClients', verbose: true, count: pageSize, offset });
      const data = res.data as { totalCount?: number; clients?: Array<{ username: string; clientid?: string; disabled?: boolean }> } | undefined;
      const clients = data?.clients ?? [];
      for (const c of clients) {
        if (deviceOfUsername(c.username) === null) continue; // managers, admins
        accounts.push({ username: c.username, clientId: c.clientid ?? '', disabled: c.disabled === true });
      }
      if (clients.length < pageSize) return accounts;
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
