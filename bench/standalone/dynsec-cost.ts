/**
 * What one device-account change costs on Mosquitto 2.0.11's dynamic-security plugin at fleet
 * size (issue 14 point 2): the plugin rewrites its whole JSON file on every change, so the time
 * of a change grows with the number of clients. Run after a build:
 *
 *   npx tsx bench/standalone/dynsec-cost.ts [1000 5000 …]
 *
 * Prints, per fleet size, the file size and the median / p95 round trip of a change through the
 * control topic (create, disable, enable, set password, delete), measured from one manager.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { startMosquitto } from '@pallas/testkit';
import { ExternalBroker } from '../../packages/manager/src/broker/external/mqtt-broker.js';
import { MosquittoDynsec } from '../../packages/manager/src/broker/external/mosquitto-dynsec.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

for (const n of sizes.length > 0 ? sizes : [1000, 5000]) {
  const devices = Array.from({ length: n }, () => {
    const id = randomUUID();
    return { username: id, clientId: id, password: `pds_${randomUUID()}` };
  });
  const broker = await startMosquitto({ devices });
  try {
    const link = new ExternalBroker({ url: broker.managerUrl, accounts: (l) => new MosquittoDynsec(l), logger: pino({ level: 'silent' }) });
    await link.start();
    const accounts = link.accounts!;
    const times: number[] = [];
    const time = async (work: () => Promise<void>) => {
      const t0 = performance.now();
      await work();
      times.push(performance.now() - t0);
    };
    for (let i = 0; i < 20; i++) {
      const id = randomUUID();
      const target = devices[i % devices.length]!.username;
      await time(() => accounts.create({ username: id, clientId: id, password: 'pw-1234567890123456' }));
      await time(() => accounts.disable(target));
      await time(() => accounts.enable(target));
      await time(() => accounts.setPassword(target, 'pw-6543210987654321'));
      await time(() => accounts.delete(id));
    }
    const listed = performance.now();
    const all = await accounts.list();
    const listMs = performance.now() - listed;
    const bytes = statSync(join(broker.dataDir, 'dynamic-security.json')).size;
    console.log(`${n} devices: file ${(bytes / 1e6).toFixed(2)} MB; change p50 ${quantile(times, 0.5).toFixed(1)} ms, p95 ${quantile(times, 0.95).toFixed(1)} ms (${times.length} changes); list of ${all.length} ${listMs.toFixed(0)} ms`);
    await link.stop();
  } finally {
    // Also after a failure: the broker is a process of its own.
    await broker.cleanup();
  }
}
