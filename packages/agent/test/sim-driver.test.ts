import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostFacts, PALLAS_VERSION, Vm, checker } from '@pallas/protocol';
import { DRIVER_NAMES, createDriver } from '../src/drivers/index.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { isAgentError } from '../src/errors.js';

const checkFacts = checker(HostFacts);
const checkVm = checker(Vm);

describe('sim driver', () => {
  it('is deterministic for a seed (apart from uptime)', async () => {
    const a = new SimDriver({ seed: 42 });
    const b = new SimDriver({ seed: 42 });
    const strip = ({ uptimeSec, ...rest }: { uptimeSec: number }) => rest;
    assert.deepEqual(strip(await a.hostFacts()), strip(await b.hostFacts()));
    assert.deepEqual(await a.listVms(), await b.listVms());
    const c = new SimDriver({ seed: 43 });
    assert.notDeepEqual([await a.listVms(), strip(await a.hostFacts())], [await c.listVms(), strip(await c.hostFacts())]);
  });

  it('produces facts and VMs valid against the protocol schemas', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const d = new SimDriver({ seed, vmCount: seed % 7 });
      const facts = { ...(await d.hostFacts()), agentVersion: PALLAS_VERSION, agentUptimeSec: 0 };
      assert.ok(checkFacts.check(facts), checkFacts.explain(facts));
      assert.equal(facts.hypervisor.kind, 'sim');
      assert.equal(facts.hypervisor.version, '1.0');
      const vms = await d.listVms();
      assert.equal(vms.length, seed % 7);
      for (const vm of vms) assert.ok(checkVm.check(vm), checkVm.explain(vm));
      assert.equal(new Set(vms.map((v) => v.id)).size, vms.length, 'VM ids are unique');
    }
  });

  it('defaults to 3 VMs with varied power states and honours options', async () => {
    const d = new SimDriver({ seed: 7, hostname: 'edge-7', cpuCores: 12, memoryMB: 24_576, datastores: [{ name: 'ssd', capacityGB: 900 }] });
    const vms = await d.listVms();
    assert.equal(vms.length, 3);
    assert.ok(new Set(vms.map((v) => v.powerState)).size >= 2);
    const facts = await d.hostFacts();
    assert.equal(facts.hostname, 'edge-7');
    assert.equal(facts.cpu.cores, 12);
    assert.equal(facts.memory.totalMB, 24_576);
    assert.equal(facts.datastores[0]?.name, 'ssd');
    assert.ok(facts.datastores[0]!.freeGB < 900);
  });

  it('returns copies, and refuses calls once closed', async () => {
    const d = new SimDriver();
    (await d.listVms())[0]!.name = 'mutated';
    assert.notEqual((await d.listVms())[0]!.name, 'mutated');
    await d.close();
    await d.close();
    await assert.rejects(d.listVms(), /closed/);
  });
});

describe('driver factory', () => {
  it('creates the sim driver lazily', async () => {
    const d = await createDriver('sim', { seed: 3 });
    assert.equal(d.kind, 'sim');
    await d.close();
  });

  it('lists the valid drivers for an unknown name', async () => {
    await assert.rejects(createDriver('vbox'), (err) => isAgentError(err, 'driver_unknown') && /sim, qemu, esxi/.test(err.message));
  });

  it('says which drivers are not built yet', async () => {
    for (const name of ['qemu', 'esxi']) {
      await assert.rejects(createDriver(name), (err) => isAgentError(err, 'driver_not_available') && /not available yet/.test(err.message));
    }
    assert.deepEqual(DRIVER_NAMES, ['sim', 'qemu', 'esxi']);
  });
});
