import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { assertDriverAvailable, type DriverName, type EsxiDriverOptions, type QemuDriverOptions } from '../drivers/index.js';
import { AgentError, AgentErrorCodes, describeError, isAgentError } from '../errors.js';
import { AGENT_OPTIONS, LOG_LEVELS, fromEnv, invalid, isLogLevel, type LogLevel } from './flags.js';
import type { AgentConfigFile, DownloadsConfig, EsxiFileOptions, SimOptions } from './config-schema.js';
import { checkAgentConfigFile } from '../checks/index.js';
import { SECRET_KEY_FILE_NAME, decryptSecret, isEncryptedSecret, readKey, type KeySource } from '../secrets/index.js';

export type { AgentConfigFile, DownloadsConfig } from './config-schema.js';

/** The esxi driver's connection, resolved: password in clear (in memory only), CA as PEM text. */
export type EsxiConnection = Omit<EsxiDriverOptions, 'warn'>;

export interface AgentConfig {
  manager: string | undefined;
  token: string | undefined;
  /** PEM file of the manager's CA: the only CA trusted for HTTPS enrollment (and MQTTS if the manager sends none). */
  ca?: string;
  /** `--re-enroll`: enroll afresh (same device id), even a retired device. Default false. */
  reEnroll: boolean;
  /** Absolute. Default `./pallas-agent-state`. */
  stateDir: string;
  /** Default `sim`. */
  driver: DriverName;
  /** Default `info`. */
  logLevel: LogLevel;
  /** Options of the sim driver (config file only). */
  sim: SimOptions;
  /** Options of the qemu driver (config file), `dir` absolute: `--qemu-dir` > `PALLAS_QEMU_DIR` > file > `<stateDir>/qemu`. */
  qemu: QemuDriverOptions;
  /** The esxi driver's connection (`--driver esxi` only): flags > `PALLAS_ESXI_*` > file `esxi`. */
  esxi: EsxiConnection | undefined;
  /** Where the key of encrypted config secrets is: `--secret-key-file` > `PALLAS_SECRET_KEY` > `PALLAS_SECRET_KEY_FILE` > `<stateDir>/secret.key`. */
  secretKey: KeySource;
  /** Artifact downloads: `--download-max-bytes-per-sec` > `PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC` > file `downloads`. */
  downloads: DownloadsConfig;
  /** At most one progress message per running task this often (config file only). Default: the task runner's, 1 s. */
  progressIntervalMs?: number;
}

export { LOG_LEVELS, USAGE, invalid, isConfigError, type LogLevel } from './flags.js';

export type Invocation = { action: 'help' } | { action: 'version' } | { action: 'run'; config: AgentConfig };




/**
 * Resolves the agent's configuration: flags > environment > config file > defaults.
 * Every problem is an AgentError `config_invalid` (or a driver error) with a one-line message.
 */
export async function loadConfig(argv: string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Promise<Invocation> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: AGENT_OPTIONS,
    }));
  } catch (err) {
    throw invalid(describeError(err));
  }
  if (values.help) return { action: 'help' };
  if (values.version) return { action: 'version' };

  const configPath = values.config ?? fromEnv(env, 'PALLAS_CONFIG');
  const file = configPath ? await readConfigFile(resolve(cwd, configPath)) : {};
  const fileDir = configPath ? dirname(resolve(cwd, configPath)) : cwd;

  const manager = values.manager ?? fromEnv(env, 'PALLAS_MANAGER') ?? file.manager;
  const token = values.token ?? fromEnv(env, 'PALLAS_TOKEN') ?? file.token;
  const caFlag = values.ca ?? fromEnv(env, 'PALLAS_CA');
  const ca = caFlag !== undefined ? resolve(cwd, caFlag) : file.ca !== undefined ? resolve(fileDir, file.ca) : undefined;
  // Flag only: left in a config file or a service's environment it would re-enroll at every
  // start and bring a decommissioned device back by itself.
  const reEnroll = values['re-enroll'] ?? false;
  const stateDirFlag = values['state-dir'] ?? fromEnv(env, 'PALLAS_STATE_DIR');
  const stateDir = stateDirFlag !== undefined
    ? resolve(cwd, stateDirFlag)
    : file.stateDir !== undefined
      ? resolve(fileDir, file.stateDir)
      : resolve(cwd, 'pallas-agent-state');
  const qemuDirFlag = values['qemu-dir'] ?? fromEnv(env, 'PALLAS_QEMU_DIR');
  const qemuDir = qemuDirFlag !== undefined
    ? resolve(cwd, qemuDirFlag)
    : file.qemu?.dir !== undefined
      ? resolve(fileDir, file.qemu.dir)
      : join(stateDir, 'qemu');
  const driver = values.driver ?? fromEnv(env, 'PALLAS_DRIVER') ?? file.driver ?? 'sim';
  const logLevel = values['log-level'] ?? fromEnv(env, 'PALLAS_LOG_LEVEL') ?? file.logLevel ?? 'info';

  if (manager !== undefined) checkManagerUrl(manager);
  const capText = values['download-max-bytes-per-sec'] ?? fromEnv(env, 'PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC');
  let maxBytesPerSec = file.downloads?.maxBytesPerSec;
  if (capText !== undefined) {
    maxBytesPerSec = /^\d+$/.test(capText) ? Number(capText) : NaN;
    if (!Number.isSafeInteger(maxBytesPerSec) || maxBytesPerSec < 1024) {
      throw invalid(`download bandwidth cap must be a whole number of bytes per second, at least 1024, got "${capText}"`);
    }
  }
  if (!isLogLevel(logLevel)) throw invalid(`invalid log level "${logLevel}"; valid levels: ${LOG_LEVELS.join(', ')}`);
  const secretKey = resolveKeySource(values['secret-key-file'], env, stateDir, cwd);
  // Resolved (and the password decrypted) before the driver check, so that a bad esxi section
  // is reported as such, with the field's name, and the agent never starts half-configured.
  const esxi = driver === 'esxi'
    ? await resolveEsxi(
        {
          url: values['esxi-url'],
          user: values['esxi-user'],
          thumbprint: values['esxi-thumbprint'],
          ca: values['esxi-ca'] === undefined ? undefined : resolve(cwd, values['esxi-ca']),
          insecure: values['esxi-insecure'],
        },
        env,
        file.esxi === undefined ? undefined : { ...file.esxi, ca: file.esxi.ca === undefined || isPem(file.esxi.ca) ? file.esxi.ca : resolve(fileDir, file.esxi.ca) },
        secretKey,
        cwd,
      )
    : undefined;
  assertDriverAvailable(driver);
  return {
    action: 'run',
    config: { manager, token, ...(ca !== undefined ? { ca } : {}), reEnroll, stateDir, driver, logLevel, sim: file.sim ?? {}, qemu: { ...file.qemu, dir: qemuDir }, esxi, secretKey,
      downloads: maxBytesPerSec === undefined ? {} : { maxBytesPerSec },
      ...(file.progressIntervalMs !== undefined ? { progressIntervalMs: file.progressIntervalMs } : {}) },
  };
}

/** `--secret-key-file` > `PALLAS_SECRET_KEY` (the key itself) > `PALLAS_SECRET_KEY_FILE` > `<stateDir>/secret.key`. */
export function resolveKeySource(flag: string | undefined, env: NodeJS.ProcessEnv, stateDir: string, cwd: string): KeySource {
  if (flag !== undefined) return { kind: 'file', path: resolve(cwd, flag) };
  const value = fromEnv(env, 'PALLAS_SECRET_KEY');
  if (value !== undefined) return { kind: 'env', value };
  const path = fromEnv(env, 'PALLAS_SECRET_KEY_FILE');
  return { kind: 'file', path: path !== undefined ? resolve(cwd, path) : join(stateDir, SECRET_KEY_FILE_NAME) };
}

/** `PALLAS_ESXI_INSECURE`: 1/true/yes or 0/false/no; anything else is a mistake worth naming. */
function envFlag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = fromEnv(env, name);
  if (v === undefined) return undefined;
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^(0|false|no)$/i.test(v)) return false;
  throw invalid(`${name} must be 1 or 0, got "${v}"`);
}

/**
 * The esxi connection: flags > `PALLAS_ESXI_*` > the file's `esxi` section, field by field.
 * The password comes from `PALLAS_ESXI_PASSWORD` or the file (`password` or
 * `passwordEncrypted`, not both), never from a flag (`ps` shows argv). An `enc:v1:` value is
 * decrypted here with the secret key: a wrong key or a modified value stops the start.
 */
export async function resolveEsxi(
  flags: { url?: string; user?: string; thumbprint?: string; ca?: string; insecure?: boolean },
  env: NodeJS.ProcessEnv,
  file: EsxiFileOptions | undefined,
  secretKey: KeySource,
  cwd: string,
): Promise<EsxiConnection> {
  const url = flags.url ?? fromEnv(env, 'PALLAS_ESXI_URL') ?? file?.url;
  const user = flags.user ?? fromEnv(env, 'PALLAS_ESXI_USER') ?? file?.user;
  const thumbprint = flags.thumbprint ?? fromEnv(env, 'PALLAS_ESXI_THUMBPRINT') ?? file?.thumbprint;
  const caEnv = fromEnv(env, 'PALLAS_ESXI_CA');
  const caPath = flags.ca ?? (caEnv === undefined ? undefined : resolve(cwd, caEnv)) ?? file?.ca;
  const insecure = flags.insecure ?? envFlag(env, 'PALLAS_ESXI_INSECURE') ?? file?.insecure ?? false;

  if (url === undefined) throw invalid('esxi.url is required with --driver esxi (--esxi-url, PALLAS_ESXI_URL or "esxi": {"url"} in the config file)');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`esxi.url "${url}" is not a URL`);
  }
  if (parsed.protocol !== 'https:') throw invalid(`esxi.url must be https://, got "${url}"`);
  if (user === undefined) throw invalid('esxi.user is required with --driver esxi (--esxi-user, PALLAS_ESXI_USER or "esxi": {"user"})');

  let password: string;
  const envPassword = fromEnv(env, 'PALLAS_ESXI_PASSWORD');
  if (envPassword !== undefined) {
    password = isEncryptedSecret(envPassword) ? await decrypt(envPassword, 'PALLAS_ESXI_PASSWORD', secretKey) : envPassword;
  } else if (file?.password !== undefined && file.passwordEncrypted !== undefined) {
    throw invalid('esxi: give password or passwordEncrypted, not both');
  } else if (file?.passwordEncrypted !== undefined) {
    password = await decrypt(file.passwordEncrypted, 'esxi.passwordEncrypted', secretKey);
  } else if (file?.password !== undefined) {
    password = file.password;
  } else {
    throw invalid('esxi.password is required with --driver esxi (PALLAS_ESXI_PASSWORD, or "password"/"passwordEncrypted" in the config file; see pallas-agent encrypt-secret)');
  }

  if (thumbprint !== undefined && !/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/.test(thumbprint.trim())) {
    throw invalid(`esxi.thumbprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), got "${thumbprint}"`);
  }
  let ca: string | undefined;
  if (caPath !== undefined && isPem(caPath)) {
    ca = caPath;
  } else if (caPath !== undefined) {
    try {
      ca = await readFile(caPath, 'utf8');
    } catch (err) {
      throw invalid(`esxi.ca: cannot read ${caPath}: ${describeError(err)}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw invalid(`esxi.ca: ${caPath} holds no PEM certificate`);
  }
  if (thumbprint === undefined && ca === undefined && !insecure) {
    throw invalid('esxi: say how to check the host\'s certificate: esxi.thumbprint (PALLAS_ESXI_THUMBPRINT), esxi.ca, or esxi.insecure (PALLAS_ESXI_INSECURE=1, labs only)');
  }
  return {
    url,
    user,
    password,
    ...(file?.callTimeoutMs === undefined ? {} : { callTimeoutMs: file.callTimeoutMs }),
    ...(file?.shutdownTimeoutMs === undefined ? {} : { shutdownTimeoutMs: file.shutdownTimeoutMs }),
    ...(thumbprint === undefined ? {} : { thumbprint: thumbprint.trim() }),
    ...(ca === undefined ? {} : { ca }),
    ...(insecure ? { insecure: true } : {}),
  };
}

/** `esxi.ca` may hold the PEM itself rather than a path. */
function isPem(value: string): boolean {
  return value.includes('-----BEGIN');
}

async function decrypt(value: string, field: string, source: KeySource): Promise<string> {
  try {
    return decryptSecret(value, await readKey(source));
  } catch (err) {
    throw invalid(`${field}: ${describeError(err)}`);
  }
}

function checkManagerUrl(manager: string): void {
  let url: URL;
  try {
    url = new URL(manager);
  } catch {
    throw invalid(`manager URL "${manager}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`manager URL must be http:// or https://, got "${manager}"`);
}

/** Reads and validates an agent config file; errors are `config_invalid` and name the file. */
export async function readConfigFile(path: string): Promise<AgentConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalid(`cannot read config file ${path}: ${describeError(err)}`);
  }
  const res = await checkAgentConfigFile.parseJson(text);
  // typebox reports a key outside the schema as "schema is false"; say what it means.
  if (!res.ok) throw invalid(`config file ${path}: ${res.error.replace(/: schema is false$/, ': unknown setting')}`);
  return res.value;
}

