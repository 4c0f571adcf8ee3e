#!/usr/bin/env node
// Lists the devices that carry a tag and are offline, with when they were last seen.
//
//   PALLAS_SERVER=https://pallas.example.com PALLAS_TOKEN=pat_… node offline-devices.mjs site=lyon
//
// PALLAS_TOKEN is an API token (`pallas api-tokens create --name report --role viewer`).
import { PallasClient } from '@pallas/client';

const tag = process.argv[2];
if (!tag) {
  console.error('usage: node offline-devices.mjs <tag>');
  process.exit(2);
}
const pallas = new PallasClient({ server: process.env.PALLAS_SERVER ?? 'http://127.0.0.1:8080', token: process.env.PALLAS_TOKEN });

// Every page of the listing, filtered by the manager.
const devices = await pallas.all('listDevices', { query: { tag, presence: 'offline' } });
for (const device of devices) {
  console.log(`${device.id}  ${device.name}  last seen ${device.lastSeenAt ?? 'never'}`);
}
console.log(`${devices.length} offline device(s) tagged ${tag}`);
