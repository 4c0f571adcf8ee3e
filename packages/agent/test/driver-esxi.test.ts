/**
 * The esxi driver against govmomi's vcsim as an ESXi host (test/support/vcsim). Besides the
 * contract suite, each effect is checked with the independent query tool (govmomi, not our
 * SOAP client), and the host's faults: wrong password, host unreachable then back, no space,
 * a certificate that does not match the pinned thumbprint.
 *
 * Needs Go and govmomi's sources: skipped without them on a partial run, failed under CI and
 * npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HostFacts, PALLAS_VERSION, checker } from '@pallas/protocol';
import { EsxiDriver, type EsxiDriverOptions } from '../src/drivers/esxi/esxi-driver.js';
import { createDriver } from '../src/drivers/index.js';
import { driverContract, recordingContext, rejectsWithCode } from './driver-contract.js';
import fc from 'fast-check';
import { FUZZ_SEED, anyText, skipUnless } from '@pallas/testkit';
import { Vcsim, vcsimSkipReason } from './support/vcsim/vcsim.js';

const checkFacts = checker(HostFacts);
const ctx = () => recordingContext();

const skip = skipUnless(vcsimSkipReason);
if (skip) {
  it('esxi driver against vcsim', { skip }, () => undefined);
} else {
  let sim: Vcsim;
  const options = (extra: Partial<EsxiDriverOptions> = {}): EsxiDriverOptions => ({
    url: sim.info.url,
    user: sim.info.user,
    password: sim.info.password,
    thumbprint: sim.info.thumbprint,
    ...extra,
  });
  before(async () => {
    sim = await Vcsim.start();
  }, { timeout: 600_000 });
  after(async () => {
    await sim?.stop();
  });

  // vcsim's blank VMs report VMware Tools as not running: shutdown is invalid_state there.
  driverContract('esxi', () => new EsxiDriver(options()), { timeoutMs: 60_000, blankGuestShutsDown: false });

  describe('esxi driver, checked with govmomi', { timeout: 120_000 }, () => {
    it('is made by the factory and reports the host facts', async () => {
      const d = await createDriver('esxi', options());
      try {
        assert.equal(d.kind, 'esxi');
        const facts = await d.hostFacts();
        const full = { ...facts, agentVersion: PALLAS_VERSION, agentUptimeSec: 0 };
        assert.ok(checkFacts.check(full), checkFacts.explain(full));
        assert.equal(facts.hypervisor.kind, 'esxi');
        assert.match(facts.hypervisor.version, /^\d+\.\d+/);
        assert.ok(facts.hypervisor.build);
        assert.ok(facts.cpu.cores > 0 && facts.memory.totalMB > 0);
        const stores = await sim.query<Array<{ name: string; capacity: number; free: number }>>('datastores');
        assert.deepEqual(facts.datastores.map((d) => d.name), stores.map((s) => s.name));
        assert.ok(facts.datastores[0]!.freeGB > 0);
        assert.deepEqual(facts.networks, ['VM Network']);
      } finally {
        await d.close();
      }
    });

    it('lists the VMs the host has, as govmomi sees them, and sees changes made outside', async () => {
      const d = new EsxiDriver(options());
      try {
        const seen = await sim.vms();
        const listed = await d.listVms();
        for (const q of seen) {
          const v = listed.find((l) => l.id === q.id);
          assert.ok(v, `VM ${q.name} listed`);
          assert.equal(v.name, q.name);
          assert.equal(v.vcpus, q.vcpus);
          assert.equal(v.memoryMB, q.memoryMB);
          assert.equal(v.powerState, q.powerState === 'poweredOn' ? 'on' : q.powerState === 'poweredOff' ? 'off' : 'suspended');
        }
        await sim.query('create', 'made-outside', '2', '256');
        const after = await d.listVms();
        const made = after.find((v) => v.name === 'made-outside');
        assert.ok(made);
        assert.equal(made.vcpus, 2);
        assert.equal(made.memoryMB, 256);
        await sim.query('rename', 'made-outside', 'renamed-outside');
        assert.ok((await d.listVms()).some((v) => v.id === made.id && v.name === 'renamed-outside'));
        await sim.query('destroy', 'renamed-outside');
        assert.ok(!(await d.listVms()).some((v) => v.id === made.id));
      } finally {
        await d.close();
      }
    });

    it('reads names given on the host exactly, whatever their characters (vcsim writes some as character references)', async () => {
      const d = new EsxiDriver(options());
      try {
        const made = await d.createVm({ name: 'unicode-names', vcpus: 1, memoryMB: 128, diskGB: 1 }, ctx());
        // Hand-picked edges, then full-Unicode text with control characters (those XML can carry:
        // govmomi, like any XML writer, cannot send the others).
        const notXml = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
        const names = [
          'tab\there', 'line\nbreak', 'cr\rhere', 'ünïcødé ✓ 😀', `a&b<c>"d'`, '&#x9; literally', ' spaced ', '007', '.', '..', '%41',
          // vSphere escapes / and \ in names (it writes %2f and %5c); * ? [ are left out with them.
          ...fc.sample(anyText(40).filter((n) => n.trim() !== '' && !notXml.test(n) && !/[/\\*?[]/.test(n)), { numRuns: 15, seed: FUZZ_SEED }),
        ];
        // Renamed by the VM's id: a name is not always a path the finder can look up ('.', '..').
        for (const name of names) {
          await sim.query('rename-id', made.id, name);
          const listed = (await d.listVms()).find((v) => v.id === made.id);
          assert.equal(listed?.name, name, `renamed on the host to ${JSON.stringify(name)} (replay: PALLAS_FUZZ_SEED=${FUZZ_SEED})`);
        }
        await sim.query('rename-id', made.id, 'unicode-names');
        await d.deleteVm(made.id, ctx());
      } finally {
        await d.close();
      }
    });

    it('creates, powers, reconfigures and deletes, each confirmed by govmomi', async () => {
      const d = new EsxiDriver(options());
      try {
        const c = ctx();
        const vm = await d.createVm({ name: 'esxi-check-1', vcpus: 2, memoryMB: 512, diskGB: 3 }, c);
        assert.ok(c.calls.length > 0);
        let q = await sim.vm('esxi-check-1');
        assert.ok(q);
        assert.equal(q.id, vm.id);
        assert.equal(q.powerState, 'poweredOff');
        assert.equal(q.vcpus, 2);
        assert.equal(q.memoryMB, 512);
        assert.equal(q.disks.length, 1);
        assert.equal(q.disks[0]!.capacityKB, Math.ceil(3e9 / 1024));
        assert.deepEqual(q.networks, ['VM Network']);
        assert.equal(vm.diskGB, 3);

        await d.powerVm(vm.id, 'on', ctx());
        assert.equal((await sim.vm('esxi-check-1'))?.powerState, 'poweredOn');
        await d.powerVm(vm.id, 'reset', ctx());
        await d.powerVm(vm.id, 'off', ctx());
        assert.equal((await sim.vm('esxi-check-1'))?.powerState, 'poweredOff');

        await d.updateVm(vm.id, { name: 'esxi-check-2', vcpus: 1, memoryMB: 1024 }, ctx());
        q = await sim.vm('esxi-check-2');
        assert.ok(q);
        assert.equal(q.vcpus, 1);
        assert.equal(q.memoryMB, 1024);

        await d.deleteVm(vm.id, ctx());
        assert.equal(await sim.vm('esxi-check-2'), undefined);
      } finally {
        await d.close();
      }
    });

    it('fails with no_space for a disk bigger than every datastore, and creates nothing', async () => {
      const d = new EsxiDriver(options());
      try {
        const before = (await sim.vms()).length;
        await rejectsWithCode(d.createVm({ name: 'too-big', vcpus: 1, memoryMB: 128, diskGB: 65_536 }, ctx()), 'no_space');
        assert.equal((await sim.vms()).length, before);
      } finally {
        await d.close();
      }
    });

    it('fails with unavailable and the host message on a wrong password', async () => {
      const d = new EsxiDriver(options({ password: 'wrong' }));
      try {
        await assert.rejects(d.listVms(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'unavailable');
          assert.match(err.message, /refused the login of user "root"/);
          return true;
        });
      } finally {
        await d.close();
      }
    });

    it('refuses a host whose certificate does not match the pinned thumbprint, before sending the password', async () => {
      const d = new EsxiDriver(options({ thumbprint: '00'.repeat(32) }));
      try {
        await assert.rejects(d.hostFacts(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'unavailable');
          assert.match(err.message, /does not match the pinned thumbprint/);
          return true;
        });
      } finally {
        await d.close();
      }
    });

    it('verifies against a pinned CA, and warns once when told to be insecure', async () => {
      const withCa = new EsxiDriver(options({ thumbprint: undefined, ca: sim.info.certFile }));
      const warnings: string[] = [];
      const insecure = new EsxiDriver(options({ thumbprint: undefined, insecure: true, warn: (m) => warnings.push(m) }));
      try {
        assert.ok((await withCa.listVms()).length >= 0);
        await insecure.listVms();
        await insecure.hostFacts();
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!, /insecure/);
      } finally {
        await withCa.close();
        await insecure.close();
      }
    });

    it('logs in again when the host expired the session (NotAuthenticated), once for concurrent calls', async () => {
      const short = await Vcsim.start({ sessionIdleTimeoutMs: 300 });
      const d = new EsxiDriver({ url: short.info.url, user: short.info.user, password: short.info.password, thumbprint: short.info.thumbprint });
      try {
        await d.listVms();
        assert.equal(d.client.logins, 1);
        // The host checks idle sessions once per timeout: after two, this one is gone.
        await new Promise((r) => setTimeout(r, 900));
        const [vms, facts] = await Promise.all([d.listVms(), d.hostFacts()]);
        assert.equal(vms.length, 2);
        assert.equal(facts.hypervisor.kind, 'esxi');
        assert.equal(d.client.logins, 2);
      } finally {
        await d.close();
        await short.stop();
      }
    });

    it('gives up on a call the host does not answer within callTimeoutMs, with unavailable', async () => {
      const slow = await Vcsim.start({ methodDelayMs: { PowerOnVM_Task: 3_000 } });
      const d = new EsxiDriver({ url: slow.info.url, user: slow.info.user, password: slow.info.password, thumbprint: slow.info.thumbprint, callTimeoutMs: 500 });
      try {
        const off = (await d.listVms())[0]!;
        await d.powerVm(off.id, 'off', ctx());
        await assert.rejects(d.powerVm(off.id, 'on', ctx()), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'unavailable');
          assert.match(err.message, /did not answer PowerOnVM_Task within 500 ms/);
          return true;
        });
        // The driver still works for the calls the host answers.
        assert.equal((await d.listVms()).length, 2);
      } finally {
        await d.close();
        await slow.stop();
      }
    });

    it('fails with unavailable while the host is down, and works again when it is back', async () => {
      const d = new EsxiDriver(options());
      try {
        await d.listVms();
        await sim.stop();
        await rejectsWithCode(d.listVms(), 'unavailable');
        await rejectsWithCode(d.createVm({ name: 'while-down', vcpus: 1, memoryMB: 128, diskGB: 1 }, ctx()), 'unavailable');
        await sim.start();
        // A new simulator process: the old session is gone, the driver logs in again.
        const vm = await d.createVm({ name: 'after-back', vcpus: 1, memoryMB: 128, diskGB: 1 }, ctx());
        assert.equal((await sim.vm('after-back'))?.id, vm.id);
        await d.deleteVm(vm.id, ctx());
      } finally {
        await d.close();
      }
    });
  });
}
