#!/usr/bin/env node
// Powers off every running VM whose name matches a pattern, on every device, and waits until
// each of those tasks has ended. Exits 1 if any of them did not succeed.
//
//   PALLAS_SERVER=https://pallas.example.com PALLAS_TOKEN=pat_… node power-off-vms.mjs 'test-*'
//
// PALLAS_TOKEN is an API token with the operator role.
import { PallasApiError, PallasClient } from '@pallas/client';

const pattern = process.argv[2] ?? 'test-*';
// `*` matches anything; everything else literally.
const matches = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
const pallas = new PallasClient({ server: process.env.PALLAS_SERVER ?? 'http://127.0.0.1:8080', token: process.env.PALLAS_TOKEN });

const tasks = [];
for await (const page of pallas.pages('listDevices')) {
  for (const device of page.items) {
    for (const vm of device.vms.filter((v) => matches.test(v.name) && v.powerState === 'on')) {
      try {
        // A task: the device runs it when it is online; the call answers at once.
        const task = await pallas.call('powerVm', { params: { id: device.id, vmId: vm.id }, body: { action: 'off' } });
        tasks.push(task);
        console.log(`${device.name}/${vm.name}: task ${task.id}`);
      } catch (err) {
        if (!(err instanceof PallasApiError)) throw err;
        console.error(`${device.name}/${vm.name}: refused: ${err.code}: ${err.message}`);
      }
    }
  }
}
console.log(`waiting for ${tasks.length} task(s)`);

// From the live event stream (polling if the manager has none), until every task is final.
const done = await pallas.waitForTasks(tasks.map((t) => t.id));
let failed = 0;
for (const task of done) {
  if (task.state !== 'succeeded') failed++;
  console.log(`${task.id} ${task.state}${task.error ? `: ${task.error.code}: ${task.error.message}` : ''}`);
}
console.log(`${done.length - failed} powered off, ${failed} not`);
process.exit(failed > 0 ? 1 : 0);
