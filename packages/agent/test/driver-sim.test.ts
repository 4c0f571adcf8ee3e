import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostFacts, PALLAS_VERSION, Vm, checker } from '@pallas/protocol';
import { DRIVER_NAMES, createDriver } from '../src/drivers/index.js';
import { isDriverError } from '../src/drivers/driver-error.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { isAgentError } from '../src/errors.js';
import { driverContract, recordingContext, rejectsWithCode } from './driver-contract.js';

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

// Plenty of memory, so that the contract's VMs can power on next to the seeded ones.
driverContract('sim', () => new SimDriver({ seed: 11, memoryMB: 65_536, latencyMs: 2 }));

const ctx = () => recordingContext();
const spec = (name: string, diskGB = 1, memoryMB = 512) => ({ name, vcpus: 1, memoryMB, diskGB });

describe('sim driver operations', () => {
  it('accounts datastore space: no_space beyond it, the most free datastore first, space back on delete', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: 0, datastores: [{ name: 'small', capacityGB: 20 }, { name: 'big', capacityGB: 100, freeGB: 30 }] });
    const free = async () => (await d.hostFacts()).datastores.map((s) => s.freeGB);
    assert.deepEqual(await free(), [20, 30]);
    await rejectsWithCode(d.createVm(spec('huge', 31), ctx()), 'no_space');
    const a = await d.createVm(spec('a', 25), ctx());
    assert.deepEqual(await free(), [20, 5]);
    await d.createVm(spec('b', 15), ctx());
    assert.deepEqual(await free(), [5, 5]);
    await rejectsWithCode(d.createVm(spec('c', 6), ctx()), 'no_space');
    await d.deleteVm(a.id, ctx());
    assert.deepEqual(await free(), [5, 30]);
    assert.deepEqual((await d.listVms()).map((v) => v.name), ['b']);
  });

  it('accounts host memory and cores: no_space to power on, invalid_spec beyond the host', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: 0, memoryMB: 4096, cpuCores: 4 });
    const a = await d.createVm(spec('a', 1, 2048), ctx());
    const b = await d.createVm(spec('b', 1, 2048), ctx());
    await d.powerVm(a.id, 'on', ctx());
    assert.equal((await d.hostFacts()).memory.usedMB, 1024 + 2048);
    await rejectsWithCode(d.powerVm(b.id, 'on', ctx()), 'no_space');
    await d.powerVm(a.id, 'shutdown', ctx());
    await d.powerVm(b.id, 'on', ctx());
    await rejectsWithCode(d.createVm(spec('big', 1, 3584), ctx()), 'invalid_spec');
    await rejectsWithCode(d.createVm({ ...spec('wide'), vcpus: 8 }, ctx()), 'invalid_spec');
    await rejectsWithCode(d.updateVm(a.id, { memoryMB: 8192 }, ctx()), 'invalid_spec');
  });

  it('resumes a suspended VM with on, powers it off, and refuses shutdown, reset and delete', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: 0, memoryMB: 65_536 });
    const vm = await d.createVm(spec('s'), ctx());
    d.simulateHostChange((vms) => (vms[0]!.powerState = 'suspended'));
    await rejectsWithCode(d.powerVm(vm.id, 'shutdown', ctx()), 'invalid_state');
    await rejectsWithCode(d.powerVm(vm.id, 'reset', ctx()), 'invalid_state');
    await rejectsWithCode(d.deleteVm(vm.id, ctx()), 'invalid_state');
    assert.equal((await d.powerVm(vm.id, 'on', ctx())).powerState, 'on');
    d.simulateHostChange((vms) => (vms[0]!.powerState = 'suspended'));
    assert.equal((await d.powerVm(vm.id, 'off', ctx())).powerState, 'off');
  });

  it('takes latencyMs per operation, in four progress steps; no-ops answer at once', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: { createVm: 120, powerVm: 10_000 } });
    const c = ctx();
    let t = performance.now();
    const vm = await d.createVm(spec('slow'), c);
    assert.ok(performance.now() - t >= 100, 'createVm took its latency');
    assert.deepEqual(c.calls.map((p) => p.pct), [25, 50, 75, 100]);
    assert.ok(c.calls.every((p) => typeof p.message === 'string' && p.message.length > 0));
    t = performance.now();
    await d.powerVm(vm.id, 'off', ctx());
    // Far below the 10 s a real power-off would wait: a bound on behaviour, not on speed.
    assert.ok(performance.now() - t < 5000, 'powering off a VM that is off waits for nothing');
  });

  it('rejects with a deadline signal reason and changes nothing; close fails running operations', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: 300 });
    await assert.rejects(d.createVm(spec('late'), recordingContext(AbortSignal.timeout(20))), (err) => err instanceof Error && err.name === 'TimeoutError');
    assert.deepEqual(await d.listVms(), []);
    const running = d.createVm(spec('cut'), ctx());
    await d.close();
    await rejectsWithCode(running, 'unavailable');
  });

  it('re-checks at the end: of two concurrent creates with one name, one fails', async () => {
    const d = new SimDriver({ vmCount: 0, latencyMs: 10 });
    const results = await Promise.allSettled([d.createVm(spec('twin'), ctx()), d.createVm(spec('twin'), ctx())]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isDriverError(failed.reason, 'invalid_spec'));
    assert.equal((await d.listVms()).length, 1);
  });

  it('injects failures reproducibly from the seed, with no effect, and without changing facts', async () => {
    const run = async (seed: number) => {
      const d = new SimDriver({ seed, vmCount: 0, latencyMs: 0, memoryMB: 65_536, failRate: 0.4 });
      const outcomes: string[] = [];
      let vm: { id: string } | undefined;
      for (let i = 0; i < 40; i++) {
        const before = await d.listVms();
        try {
          if (!vm) vm = await d.createVm(spec('flaky'), ctx());
          else await d.powerVm(vm.id, i % 2 ? 'on' : 'off', ctx());
          outcomes.push('ok');
        } catch (err) {
          assert.ok(isDriverError(err, 'host_error'), String(err));
          assert.match(err.message, /injected/);
          assert.deepEqual(await d.listVms(), before, 'a failed operation changes nothing');
          outcomes.push('fail');
        }
      }
      return outcomes;
    };
    const a = await run(5);
    assert.deepEqual(await run(5), a);
    assert.notDeepEqual(await run(6), a);
    assert.ok(a.includes('ok') && a.includes('fail'));

    const strip = ({ uptimeSec, ...rest }: { uptimeSec: number }) => rest;
    const plain = new SimDriver({ seed: 5 });
    const flaky = new SimDriver({ seed: 5, failRate: 1 });
    assert.deepEqual(strip(await flaky.hostFacts()), strip(await plain.hostFacts()));
    assert.deepEqual(await flaky.listVms(), await plain.listVms());
    assert.throws(() => new SimDriver({ failRate: 2 }), RangeError);
  });

  it('fails every call of an operation named in failOn with its code', async () => {
    const d = new SimDriver({ vmCount: 2, latencyMs: 0, memoryMB: 65_536, failOn: { createVm: 'no_space', deleteVm: 'unavailable' } });
    const c = ctx();
    await rejectsWithCode(d.createVm(spec('x'), c), 'no_space');
    await rejectsWithCode(d.createVm(spec('y'), ctx()), 'no_space');
    assert.ok(c.calls.every((p) => p.pct < 100), 'a failed operation does not report 100%');
    const [, off] = await d.listVms();
    await rejectsWithCode(d.deleteVm(off!.id, ctx()), 'unavailable');
    assert.equal((await d.powerVm(off!.id, 'on', ctx())).powerState, 'on');
  });

  it('shows changes made by hand on the host, and keeps them consistent', async () => {
    const d = new SimDriver({ seed: 2, vmCount: 2, latencyMs: 0, datastores: [{ name: 'ds', capacityGB: 1000 }] });
    const [running] = await d.listVms();
    const freeBefore = (await d.hostFacts()).datastores[0]!.freeGB;
    d.simulateHostChange((vms) => {
      vms[0]!.powerState = 'off';
      vms[0]!.name = 'renamed in vSphere client';
      vms.push({ id: 'vm-500', name: 'made by hand', powerState: 'on', vcpus: 2, memoryMB: 1024, diskGB: 40 });
    });
    const vms = await d.listVms();
    assert.deepEqual(vms[0], { ...running!, powerState: 'off', name: 'renamed in vSphere client' });
    assert.equal(vms[2]!.name, 'made by hand');
    assert.equal((await d.hostFacts()).datastores[0]!.freeGB, freeBefore - 40);
    const next = await d.createVm(spec('after'), ctx());
    assert.ok(!['vm-100', 'vm-101', 'vm-500'].includes(next.id), `new id ${next.id} collides with none`);
    await rejectsWithCode(d.createVm(spec('made by hand'), ctx()), 'invalid_spec');

    d.simulateHostChange((vms) => vms.splice(2, 1));
    assert.equal((await d.hostFacts()).datastores[0]!.freeGB, freeBefore - 1);
    const snapshot = await d.listVms();
    assert.throws(() => d.simulateHostChange((vms) => vms.push({ ...vms[0]! })), /duplicate VM id/);
    assert.throws(() => d.simulateHostChange((vms) => (vms[0]!.vcpus = 0)), TypeError);
    assert.deepEqual(await d.listVms(), snapshot, 'an invalid change is not applied');
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

  it('has every driver of the design built; esxi without its options is invalid_spec', async () => {
    assert.deepEqual(DRIVER_NAMES, ['sim', 'qemu', 'esxi']);
    await assert.rejects(createDriver('esxi'), (err) => err instanceof Error && (err as { code?: string }).code === 'invalid_spec' && /"url" is required/.test(err.message));
  });
});
