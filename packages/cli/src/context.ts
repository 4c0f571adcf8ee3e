/**
 * What every command needs for one invocation: the resolved server and token, an API client,
 * and output that honours `--json`. Built lazily so `pallas --help` never reads the config.
 */
import { PallasClient } from '@pallas/client';
import { PALLAS_VERSION } from '@pallas/protocol';
import { configPath, loadConfig, resolveServer, resolveToken, type SavedConfig, type Source } from './config.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';

const USER_AGENT = `pallas-cli/${PALLAS_VERSION}`;

export interface GlobalOptions {
  server?: string;
  json?: boolean;
}

export class Context {
  readonly io: Io;
  readonly json: boolean;
  readonly configPath: string;
  readonly #serverFlag: string | undefined;
  #saved: SavedConfig | undefined;

  constructor(io: Io, globals: GlobalOptions) {
    this.io = io;
    this.json = globals.json === true;
    this.#serverFlag = globals.server;
    this.configPath = configPath(io.env);
  }

  async saved(): Promise<SavedConfig> {
    this.#saved ??= await loadConfig(this.configPath);
    return this.#saved;
  }

  async server(): Promise<{ server: string; source: Source }> {
    return resolveServer(this.#serverFlag, this.io.env, await this.saved());
  }

  /** A client carrying the session token; fails before any request when there is none. */
  async client(): Promise<PallasClient> {
    const { server } = await this.server();
    const token = resolveToken(server, this.io.env, await this.saved());
    if (!token) throw new CliError(`not logged in to ${server}: run \`pallas login\``);
    return new PallasClient({ server, token, userAgent: USER_AGENT });
  }

  /** A client without a token, for `login`. */
  async anonymousClient(): Promise<PallasClient> {
    return new PallasClient({ server: (await this.server()).server, userAgent: USER_AGENT });
  }

  /** The command's result: JSON on stdout with --json, else the human rendering. */
  emit(value: unknown, human: () => string): void {
    if (this.json) this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else {
      const text = human();
      if (text !== '') this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** A side note for people (never in --json output): goes to stderr. */
  note(message: string): void {
    if (!this.json) this.io.stderr.write(`${message}\n`);
  }
}
