/**
 * Debian's Mosquitto started by the benchmark on a free loopback port (never the system's
 * 1883), with a config of its own in a temp dir: anonymous clients, no persistence, and no
 * queue limits, so a baseline measures the broker and not a cap we set. Its own RSS is
 * read from /proc for the per-client memory baseline.
 */
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startProgram, tempDir, waitFor, isListening } from '@pallas/testkit';

const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface BenchMosquitto {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchMosquitto(): Promise<BenchMosquitto> {
  const dir = tempDir('pallas-bench-mosquitto-');
  chmodSync(dir.path, 0o777);
  const port = await freePort();
  const conf = join(dir.path, 'mosquitto.conf');
  writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    // Unlimited: a status ramp or a fan-out must not be cut by a queue cap of our own.
    'max_queued_messages 0',
    'max_inflight_messages 0',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    '',
  ].join('\n'));
  const proc = startProgram(MOSQUITTO_BIN, ['-c', conf]);
  await waitFor('bench mosquitto to listen', () => isListening(port), { timeoutMs: 10_000 });
  return {
    host: '127.0.0.1',
    port,
    pid: proc.child.pid!,
    async stop() {
      await proc.stop();
      dir.cleanup();
    },
  };
}
