import type { HostFacts } from '@pallas/protocol';

/** Plausible host facts that pass the protocol schema, for tests that enroll by hand. */
export function sampleHostFacts(hostname: string, overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    hostname,
    hypervisor: { kind: 'sim', version: '1.0', build: 'test' },
    model: 'Test Box 1000',
    cpu: { model: 'Test CPU @ 2.0GHz', cores: 4, mhz: 2000, usagePct: 12.5 },
    memory: { totalMB: 8192, usedMB: 1024 },
    datastores: [{ name: 'datastore1', capacityGB: 500, freeGB: 250 }],
    networks: ['VM Network'],
    agentVersion: '0.1.0',
    uptimeSec: 1000,
    agentUptimeSec: 100,
    ...overrides,
  };
}
