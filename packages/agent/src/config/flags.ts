/**
 * The agent's command line, without anything heavy: the flag table, the usage text, the log
 * levels and the config error helpers. The supervisor (`pallas-agent supervise`) reads its
 * options through this module alone, so that it loads no schema library (docs/agent-update.md).
 */
import { AgentError, AgentErrorCodes, isAgentError } from '../errors.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** `parseArgs` options of `pallas-agent` (and `pallas-agent supervise`, which takes the same). */
export const AGENT_OPTIONS = {
  manager: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  're-enroll': { type: 'boolean' },
  'state-dir': { type: 'string' },
  driver: { type: 'string' },
  'qemu-dir': { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
  'esxi-url': { type: 'string' },
  'esxi-user': { type: 'string' },
  'esxi-thumbprint': { type: 'string' },
  'esxi-ca': { type: 'string' },
  'esxi-insecure': { type: 'boolean' },
  'secret-key-file': { type: 'string' },
  'download-max-bytes-per-sec': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export const USAGE = `Usage: pallas-agent [options]

Runs the Pallas device agent: enrolls with the manager once, then keeps an MQTT link to it.

Options (flags override PALLAS_* environment variables, which override the config file):
  --manager <url>      manager base URL, http(s)                      [PALLAS_MANAGER]
  --token <token>      enrollment token (first start only)            [PALLAS_TOKEN]
  --ca <file>          pin the manager's CA (PEM) from the first call  [PALLAS_CA]
  --re-enroll          enroll afresh with --token, same device id (flag only)
                       (after a decommission or a refused credential)
  --state-dir <dir>    identity and credential (./pallas-agent-state) [PALLAS_STATE_DIR]
  --driver <name>      hypervisor driver: sim|qemu|esxi (sim)         [PALLAS_DRIVER]
  --qemu-dir <dir>     qemu driver: VM folders (<state-dir>/qemu)     [PALLAS_QEMU_DIR]
  --config <file>      JSON config file                               [PALLAS_CONFIG]
  --esxi-url <url>     esxi driver: host URL, https                   [PALLAS_ESXI_URL]
  --esxi-user <name>   esxi driver: user                              [PALLAS_ESXI_USER]
                       esxi driver: password (never a flag)           [PALLAS_ESXI_PASSWORD]
  --esxi-thumbprint <sha256>  esxi driver: host certificate pin      [PALLAS_ESXI_THUMBPRINT]
  --esxi-ca <file>     esxi driver: PEM of the host's CA              [PALLAS_ESXI_CA]
  --esxi-insecure      esxi driver: no certificate check (labs only)  [PALLAS_ESXI_INSECURE=1]
  --secret-key-file <file>  key of encrypted config secrets           [PALLAS_SECRET_KEY_FILE]
                       (<state-dir>/secret.key; or the key itself in  [PALLAS_SECRET_KEY])
  --download-max-bytes-per-sec <n>  cap on artifact downloads (none)
                                                   [PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC]
  --log-level <level>  fatal|error|warn|info|debug|trace|silent (info) [PALLAS_LOG_LEVEL]
  --help               show this help
  --version            show the version

Subcommands:
  pallas-agent supervise [options]
                       runs the agent under its supervisor: restarts, self-update and
                       rollback (docs/agent-update.md); takes the options above
  pallas-agent encrypt-secret [--config <file> --write] [--secret-key-file <file>]
                       encrypts the ESXi password read from stdin (see encrypt-secret --help)
`;

/** A `config_invalid` error: the user's configuration or command line is wrong (exit status 2). */
export function invalid(message: string): AgentError {
  return new AgentError(AgentErrorCodes.CONFIG_INVALID, message);
}

/** Empty environment variables count as unset. */
export function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** True for the errors that mean "fix your configuration" (exit status 2). */
export function isConfigError(err: unknown): boolean {
  return (
    isAgentError(err, AgentErrorCodes.CONFIG_INVALID) ||
    isAgentError(err, AgentErrorCodes.DRIVER_UNKNOWN) ||
    isAgentError(err, AgentErrorCodes.ENROLLMENT_NOT_CONFIGURED)
  );
}
