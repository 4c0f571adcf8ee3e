import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RunningManager } from './app.js';

/**
 * Quickstart demo: a `pallas-sim` child process with N simulated devices that enroll with
 * a token made for them. Their state lives in `<data-dir>/demo-fleet`, so a restart brings
 * the same devices back instead of enrolling new ones.
 */
export async function startDemoFleet(manager: RunningManager, devices: number): Promise<{ stop(): Promise<void> }> {
  // The simulator enrolls over plain HTTP on loopback; in production mode that listener is off.
  if (manager.ports.http === null) throw new Error('demo devices need the plain HTTP listener: pass --http-port (or leave production mode)');
  const simBin = locateSimulator();
  const { token } = await manager.services.enrollment.createToken('demo', { name: 'demo fleet', maxUses: devices });
  const child = spawn(
    process.execPath,
    [simBin, '--manager', `http://127.0.0.1:${manager.ports.http}`, '--token', token, '--devices', String(devices),
      '--state-dir', join(manager.config.dataDir, 'demo-fleet')],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) manager.logger.warn({ code }, 'demo fleet exited');
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

// The simulator is a workspace package beside the manager; it is not a dependency of a
// production install, so it is looked up at run time.
function locateSimulator(): string {
  const require = createRequire(import.meta.url);
  for (const base of require.resolve.paths('@pallas/sim') ?? []) {
    const bin = join(base, '@pallas', 'sim', 'bin', 'pallas-sim.js');
    if (existsSync(bin)) return bin;
  }
  const sibling = join(dirname(new URL(import.meta.url).pathname), '..', '..', 'sim', 'bin', 'pallas-sim.js');
  if (existsSync(sibling)) return sibling;
  throw new Error('the fleet simulator (@pallas/sim) is not installed; demo devices need it');
}
