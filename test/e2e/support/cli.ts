import { spawn } from 'node:child_process';
import { BIN } from '@pallas/testkit';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `pallas` binary as its own process, with its own config dir and no terminal
 * (stdin closed, stdout a pipe), the way a script would. Asynchronous, so the test process
 * keeps serving its own sockets meanwhile.
 */
export function pallas(configDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN.cli, ...args], {
      env: { ...process.env, PALLAS_CONFIG_DIR: configDir, PALLAS_SERVER: '', PALLAS_TOKEN: '', PALLAS_PASSWORD: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
