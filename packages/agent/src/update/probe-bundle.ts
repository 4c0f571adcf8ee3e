import { spawn } from 'node:child_process';
import { UpdateError } from './update-error.js';

const VERSION_LINE = /^pallas-agent ([A-Za-z0-9][A-Za-z0-9._+~-]{0,127})\r?\n?$/;

/**
 * Asks a would-be agent bundle for its version (`node <file> --version`) and resolves with it.
 * This is the cheap check that the artifact is an agent at all before the agent bets its
 * restart on it; whether it *works* is what the healthy deadline finds out. Rejects with
 * `invalid_artifact` if it does not answer one `pallas-agent <version>` line, exit 0, within
 * `timeoutMs` (default 15 s: a cold start of a 2 MB bundle on a slow device).
 */
export function probeAgentBundle(file: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, '--version'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PALLAS_AGENT_SUPERVISED: '' } });
    let out = '';
    let err = '';
    const fail = (why: string): void => reject(new UpdateError('invalid_artifact', `the artifact is not a pallas-agent bundle: ${why}`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(`"--version" did not answer within ${Math.round(timeoutMs / 1000)} s`);
    }, timeoutMs);
    // Only the first bytes matter; a chatty file must not grow the agent's memory.
    child.stdout.on('data', (chunk: Buffer) => (out = (out + chunk.toString('utf8')).slice(0, 512)));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString('utf8')).slice(0, 512)));
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') return; // timed out, already rejected
      const match = VERSION_LINE.exec(out);
      if (code === 0 && match) return resolve(match[1]!);
      const said = (err.trim() || out.trim()).split('\n')[0]?.slice(0, 200) ?? '';
      fail(code !== 0 ? `"--version" exited with ${code ?? signal}${said ? `: ${said}` : ''}` : `"--version" printed ${JSON.stringify(out.slice(0, 80))}`);
    });
  });
}
