import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { invalid, readConfigFile, resolveKeySource, type AgentConfigFile } from '../config/config.js';
import { describeError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { readOrCreateKey } from './key-store.js';
import { encryptSecret } from './secret-box.js';

export const ENCRYPT_SECRET_USAGE = `Usage: pallas-agent encrypt-secret [options] < password

Encrypts the ESXi host password (read from stdin, without echo on a terminal; never from an
argument, which ps would show) with AES-256-GCM, under a 256-bit key kept apart from the
config file. Prints the encrypted value (enc:v1:...), or with --write puts it into the config
file as esxi.passwordEncrypted (and removes any clear esxi.password).

Options:
  --config <file>           the agent's JSON config file                 [PALLAS_CONFIG]
  --write                   write into the config file (atomic, mode 0600) instead of printing
  --secret-key-file <file>  the key; created (mode 0600) when missing    [PALLAS_SECRET_KEY_FILE]
                            default <state-dir>/secret.key; PALLAS_SECRET_KEY (base64) instead
  --state-dir <dir>         for the default key file                     [PALLAS_STATE_DIR]
  --help                    show this help
`;

export interface CommandIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** `pallas-agent encrypt-secret`. Resolves with the exit status; bad usage throws `config_invalid`. */
export async function runEncryptSecret(argv: string[], env: NodeJS.ProcessEnv, io: CommandIo, cwd: string = process.cwd()): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        write: { type: 'boolean' },
        'secret-key-file': { type: 'string' },
        'state-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw invalid(`${describeError(err)} (the password is read from stdin, never from an argument)`);
  }
  if (values.help) {
    io.stdout.write(ENCRYPT_SECRET_USAGE);
    return 0;
  }
  const configFlag = values.config ?? (env.PALLAS_CONFIG || undefined);
  if (values.write && configFlag === undefined) throw invalid('--write needs --config <file>');
  const configPath = configFlag === undefined ? undefined : resolve(cwd, configFlag);
  // Read (and check) the config before asking for the password: a typo costs no retyping.
  const config = configPath === undefined ? undefined : await readConfigFile(configPath);

  const stateDirFlag = values['state-dir'] ?? (env.PALLAS_STATE_DIR || undefined);
  const stateDir = stateDirFlag !== undefined
    ? resolve(cwd, stateDirFlag)
    : config?.stateDir !== undefined
      ? resolve(dirname(configPath!), config.stateDir)
      : resolve(cwd, 'pallas-agent-state');
  const source = resolveKeySource(values['secret-key-file'], env, stateDir, cwd);

  const password = await readPassword(io);
  if (password === '') throw invalid('empty password on stdin');
  let key;
  try {
    const res = await readOrCreateKey(source);
    key = res.key;
    if (res.created && source.kind === 'file') io.stderr.write(`pallas-agent: created secret key file ${source.path} (mode 0600; keep it off backups of the config)\n`);
  } catch (err) {
    throw invalid(describeError(err));
  }
  const encrypted = encryptSecret(password, key);

  if (!values.write) {
    io.stdout.write(`${encrypted}\n`);
    return 0;
  }
  const { password: _clear, ...esxi } = config!.esxi ?? {};
  const next: AgentConfigFile = { ...config!, esxi: { ...esxi, passwordEncrypted: encrypted } };
  await writeFileAtomic(configPath!, `${JSON.stringify(next, null, 2)}\n`, 0o600);
  io.stderr.write(`pallas-agent: wrote esxi.passwordEncrypted to ${configPath} (mode 0600)${_clear === undefined ? '' : '; removed the clear esxi.password'}\n`);
  return 0;
}

/**
 * The password: on a terminal, one line typed without echo (raw mode, so the terminal shows
 * nothing); from a pipe or file, everything up to EOF less one trailing newline.
 */
async function readPassword(io: CommandIo): Promise<string> {
  const { stdin } = io;
  if (stdin.isTTY && stdin.setRawMode) {
    io.stderr.write('ESXi password: ');
    stdin.setRawMode(true);
    stdin.resume();
    try {
      return await new Promise<string>((done, fail) => {
        let typed = '';
        const onData = (chunk: Buffer | string): void => {
          for (const ch of chunk.toString()) {
            if (ch === '\r' || ch === '\n' || ch === '\u0004') {
              stdin.off('data', onData);
              done(typed);
              return;
            }
            if (ch === '\u0003') {
              stdin.off('data', onData);
              fail(invalid('interrupted'));
              return;
            }
            if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
            else typed += ch;
          }
        };
        stdin.on('data', onData);
      });
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
      io.stderr.write('\n');
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
