/**
 * Where the CLI keeps its session, and which server and token a command uses.
 * Precedence everywhere: flag > environment (PALLAS_*) > saved config > default.
 */
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, UsageError } from './errors.js';

/** What `pallas login` saves. Every field is optional: a file may be partial or hand-edited. */
export interface SavedConfig {
  server?: string;
  token?: string;
  username?: string;
  expiresAt?: string;
}

export type Env = Record<string, string | undefined>;

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** `$PALLAS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/pallas`, else `~/.config/pallas`. */
export function configDir(env: Env): string {
  if (env.PALLAS_CONFIG_DIR) return env.PALLAS_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'pallas');
}

export function configPath(env: Env): string {
  return join(configDir(env), 'config.json');
}

export async function loadConfig(path: string): Promise<SavedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not valid JSON: fix or delete it, then run \`pallas login\``);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(`${path} is not a JSON object: fix or delete it, then run \`pallas login\``);
  }
  // Keep only the string fields we know, so a hand-edited file cannot smuggle in odd types.
  const out: SavedConfig = {};
  for (const key of ['server', 'token', 'username', 'expiresAt'] as const) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

/**
 * Save atomically and privately: the file holds a bearer token. The directory is 0700 and the
 * file 0600 from its creation (a temp file opened with that mode, then renamed over the old one),
 * so no other user can read it even for a moment, and a crash never leaves half a file.
 */
export async function saveConfig(path: string, config: SavedConfig): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700); // mkdir leaves an existing directory's mode alone
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.chmod(0o600); // in case the temp file existed from a crashed run
    await fh.writeFile(`${JSON.stringify(config, null, 2)}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A server URL without trailing slashes; anything but http(s) is a usage error. */
export function normalizeServer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`invalid server URL '${raw}' (expected e.g. https://pallas.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`invalid server URL '${raw}': only http and https are supported`);
  }
  return url.href.replace(/\/+$/, '');
}

export type Source = 'flag' | 'env' | 'config' | 'default';

export function resolveServer(flag: string | undefined, env: Env, saved: SavedConfig): { server: string; source: Source } {
  if (flag) return { server: normalizeServer(flag), source: 'flag' };
  if (env.PALLAS_SERVER) return { server: normalizeServer(env.PALLAS_SERVER), source: 'env' };
  if (saved.server) return { server: normalizeServer(saved.server), source: 'config' };
  return { server: DEFAULT_SERVER, source: 'default' };
}

/**
 * PALLAS_TOKEN wins. The saved token is used only for the server it was issued by, so
 * `--server https://other` never sends this manager's token to another host.
 */
export function resolveToken(server: string, env: Env, saved: SavedConfig): string | undefined {
  if (env.PALLAS_TOKEN) return env.PALLAS_TOKEN;
  if (!saved.token || !saved.server) return undefined;
  let savedServer: string;
  try {
    savedServer = normalizeServer(saved.server);
  } catch {
    return undefined;
  }
  return savedServer === server ? saved.token : undefined;
}
