/** The `pallas` command tree and the one place where errors become exit codes. */
import { Command, CommanderError } from 'commander';
import { PALLAS_VERSION } from '@pallas/protocol';
import { registerArtifacts } from './commands/artifacts.js';
import { registerApiTokens } from './commands/api-tokens.js';
import { registerAudit } from './commands/audit.js';
import { registerCluster } from './commands/cluster.js';
import { registerFleet } from './commands/fleet.js';
import { registerAuth } from './commands/auth.js';
import { registerDevices } from './commands/devices.js';
import { registerTasks } from './commands/tasks.js';
import { registerGroups } from './commands/groups.js';
import { registerRollouts } from './commands/rollouts.js';
import { registerTokens } from './commands/tokens.js';
import { registerUsers } from './commands/users.js';
import { registerVms } from './commands/vms.js';
import { DEFAULT_SERVER } from './config.js';
import { describeError, ExitCode } from './errors.js';
import type { Io } from './io.js';

/**
 * `--version` after a subcommand belongs to that subcommand (`artifacts upload --version 1.2`);
 * commander would otherwise take it as the program's own anywhere on the line. So the program
 * claims `--version` only when no subcommand name comes before it (`-V` always works).
 */
function versionFlagsFor(argv: readonly string[], commands: readonly string[]): string {
  const version = argv.indexOf('--version');
  const command = argv.findIndex((a) => commands.includes(a));
  return version >= 0 && command >= 0 && command < version ? '-V' : '-V, --version';
}
const COMMANDS_WITH_VERSION_OPTION = ['artifacts', 'artifact'];

export function buildProgram(io: Io, argv: readonly string[] = []): Command {
  const program = new Command('pallas');
  // Settings first: subcommands copy them from their parent when they are created.
  program
    .description('Operate a Pallas fleet: devices, their VMs and tasks, users and enrollment tokens.')
    .version(PALLAS_VERSION, versionFlagsFor(argv, COMMANDS_WITH_VERSION_OPTION), 'output the version number')
    .option('--server <url>', `manager URL (default: $PALLAS_SERVER, the server you logged in to, or ${DEFAULT_SERVER})`)
    .option('--json', 'print machine-readable JSON on stdout')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Same one-line "pallas: …" shape as every other error.
      outputError: (s, write) => {
        const message = s.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ');
        write(wantsJson(argv) ? `${JSON.stringify({ error: { code: 'usage', message } })}\n` : `pallas: ${message}\n`);
      },
    })
    .showSuggestionAfterError()
    .exitOverride();
  registerAuth(program, io);
  registerDevices(program, io);
  registerVms(program, io);
  registerTasks(program, io);
  registerUsers(program, io);
  registerTokens(program, io);
  registerApiTokens(program, io);
  registerAudit(program, io);
  registerArtifacts(program, io);
  registerCluster(program, io);
  registerFleet(program, io);
  registerGroups(program, io);
  registerRollouts(program, io);
  return program;
}

/** `--json` anywhere before a `--`, as commander reads it. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Run one invocation (argv without node and script) and return the exit code; never throws. */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const program = buildProgram(io, argv);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed help or its message; anything but help is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const { message, exitCode, code } = describeError(err);
    // With --json a script reads the error as JSON too: {"error": {"code", "message"}} on stderr.
    if (wantsJson(argv)) io.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
    else io.stderr.write(`pallas: ${message}\n`);
    if (io.env.PALLAS_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}
