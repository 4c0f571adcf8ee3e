import { describeError } from './errors.js';
import { isConfigError } from './config/flags.js';

/**
 * `pallas-agent`: dispatches to the agent itself, `supervise` or `encrypt-secret`, importing
 * only what the one it runs needs. The supervisor in particular stays small: it loads no MQTT
 * client, driver, schema library or pino (docs/agent-update.md, docs/benchmarks.md "Agent
 * footprint"). Exit status: see `runAgent`.
 */
async function main(): Promise<number> {
  if (process.argv[2] === 'encrypt-secret') return encryptSecret(process.argv.slice(3));
  if (process.argv[2] === 'supervise') return supervise(process.argv.slice(3));
  return (await import('./agent-main.js')).runAgent();
}

async function supervise(argv: string[]): Promise<number> {
  try {
    // The supervisor's JavaScript stays in V8's interpreter, as the agent's does
    // (AGENT_NODE_FLAGS): loading its modules makes Node's URL-to-path conversion hot enough
    // for TurboFan, whose compiled code and the compiler's own pages it touches would stay
    // resident, some 4 MiB of an otherwise idle process (docs/benchmarks.md, "Agent footprint").
    (await import('node:v8')).setFlagsFromString('--no-opt');
    const { runSupervise } = await import('./update/supervise-command.js');
    return await runSupervise(argv, process.env, process.argv[1]!);
  } catch (err) {
    process.stderr.write(`pallas-agent supervise: ${describeError(err)}\n`);
    return isConfigError(err) ? 2 : 1;
  }
}

async function encryptSecret(argv: string[]): Promise<number> {
  try {
    const { runEncryptSecret } = await import('./secrets/encrypt-secret-command.js');
    return await runEncryptSecret(argv, process.env, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  } catch (err) {
    process.stderr.write(`pallas-agent encrypt-secret: ${describeError(err)}\n`);
    return isConfigError(err) ? 2 : 1;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pallas-agent: ${describeError(err)}\n`);
    process.exit(isConfigError(err) ? 2 : 1);
  },
);
