/**
 * The driver contract: what every adapter of the hypervisor port (`sim`, `qemu`, `esxi`)
 * must do, as one suite. An adapter's test file calls `driverContract('qemu', makeDriver)`.
 *
 * The suite works on VMs it creates itself (small: 1 vCPU, 128 MB, 1 GB disk, names
 * `contract-…`), leaves every other VM alone, and deletes what it created after each test,
 * so it can run against a real host that has VMs of its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Vm, checker, type VmSpec } from '@pallas/protocol';
import type { Driver, OperationContext } from '../src/drivers/driver.js';
import { isDriverError, type DriverErrorCode } from '../src/drivers/driver-error.js';

export interface DriverContractOptions {
  /** Per-test timeout in ms, for slow hypervisors. Default 30 s. */
  timeoutMs?: number;
  /**
   * Whether the suite's VMs, which are blank (no guest OS), shut down when asked. True for the
   * sim; false on a real hypervisor, where nothing in a blank guest answers the request (QEMU's
   * ACPI power button, ESXi's guest tools): there `shutdown` of a running blank VM must fail
   * with `host_error` or `invalid_state` and leave it on. Default true.
   */
  blankGuestShutsDown?: boolean;
}

const checkVm = checker(Vm);

/** An operation context that records progress and never aborts. */
export function recordingContext(signal: AbortSignal = new AbortController().signal): OperationContext & { calls: Array<{ pct: number; message: string | undefined }> } {
  const calls: Array<{ pct: number; message: string | undefined }> = [];
  return { signal, calls, progress: (pct, message) => calls.push({ pct, message }) };
}

export async function rejectsWithCode(promise: Promise<unknown>, code: DriverErrorCode): Promise<void> {
  await assert.rejects(promise, (err) => {
    assert.ok(isDriverError(err), `expected a DriverError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.length > 0);
    return true;
  });
}

export function driverContract(name: string, makeDriver: () => Driver | Promise<Driver>, options: DriverContractOptions = {}): void {
  describe(`driver contract: ${name}`, { timeout: options.timeoutMs ?? 30_000 }, () => {
    let driver: Driver;
    let created: string[];
    const ctx = (): OperationContext => recordingContext();
    const spec = (overrides: Partial<VmSpec> = {}): VmSpec => ({
      name: `contract-${randomBytes(4).toString('hex')}`,
      vcpus: 1,
      memoryMB: 128,
      diskGB: 1,
      ...overrides,
    });
    const create = async (overrides: Partial<VmSpec> = {}): Promise<Vm> => {
      const vm = await driver.createVm(spec(overrides), ctx());
      created.push(vm.id);
      return vm;
    };
    const find = async (id: string): Promise<Vm | undefined> => (await driver.listVms()).find((v) => v.id === id);

    beforeEach(async () => {
      driver = await makeDriver();
      created = [];
    });
    afterEach(async () => {
      for (const id of created) {
        await driver.powerVm(id, 'off', ctx()).catch(() => undefined);
        await driver.deleteVm(id, ctx()).catch(() => undefined);
      }
      await driver.close();
    });

    it('creates a VM, powered off, with the spec, visible in listVms, reporting progress', async () => {
      const before = await driver.listVms();
      const s = spec({ vcpus: 1, memoryMB: 192, diskGB: 2 });
      const c = recordingContext();
      const vm = await driver.createVm(s, c);
      created.push(vm.id);
      assert.ok(checkVm.check(vm), checkVm.explain(vm));
      assert.deepEqual({ name: vm.name, vcpus: vm.vcpus, memoryMB: vm.memoryMB, diskGB: vm.diskGB, powerState: vm.powerState }, { ...s, powerState: 'off' });
      assert.ok(!before.some((v) => v.id === vm.id), 'the id is new');
      assert.deepEqual(await find(vm.id), vm);
      assert.equal((await driver.listVms()).length, before.length + 1);
      assert.ok(c.calls.length > 0, 'progress reported');
      for (const [i, { pct }] of c.calls.entries()) {
        assert.ok(pct >= 0 && pct <= 100, `progress ${pct} within 0..100`);
        if (i > 0) assert.ok(pct >= c.calls[i - 1]!.pct, 'progress never decreases');
      }
      assert.equal(c.calls.at(-1)!.pct, 100);
    });

    it('gives each VM its own id and refuses a duplicate name or an invalid spec', async () => {
      const a = await create();
      const b = await create();
      assert.notEqual(a.id, b.id);
      const count = (await driver.listVms()).length;
      await rejectsWithCode(driver.createVm(spec({ name: a.name }), ctx()), 'invalid_spec');
      await rejectsWithCode(driver.createVm(spec({ vcpus: 0 }), ctx()), 'invalid_spec');
      await rejectsWithCode(driver.createVm(spec({ name: 'bad/name' }), ctx()), 'invalid_spec');
      await rejectsWithCode(driver.createVm({ ...spec(), extra: true } as VmSpec, ctx()), 'invalid_spec');
      await rejectsWithCode(driver.createVm(spec({ network: 'no-such-network-7f3a' }), ctx()), 'invalid_spec');
      assert.equal((await driver.listVms()).length, count, 'nothing created');
    });

    it('powers on, resets, shuts down and powers off, with idempotent no-ops', async () => {
      const vm = await create();
      await rejectsWithCode(driver.powerVm(vm.id, 'reset', ctx()), 'invalid_state');
      assert.equal((await driver.powerVm(vm.id, 'off', ctx())).powerState, 'off', 'off when off: no-op');
      assert.equal((await driver.powerVm(vm.id, 'shutdown', ctx())).powerState, 'off', 'shutdown when off: no-op');
      const on = await driver.powerVm(vm.id, 'on', ctx());
      assert.deepEqual(on, { ...vm, powerState: 'on' });
      assert.equal((await find(vm.id))?.powerState, 'on');
      assert.deepEqual(await driver.powerVm(vm.id, 'on', ctx()), on, 'on when on: unchanged');
      assert.equal((await driver.powerVm(vm.id, 'reset', ctx())).powerState, 'on');
      if (options.blankGuestShutsDown ?? true) {
        assert.equal((await driver.powerVm(vm.id, 'shutdown', ctx())).powerState, 'off');
        assert.equal((await find(vm.id))?.powerState, 'off');
        await driver.powerVm(vm.id, 'on', ctx());
      } else {
        await assert.rejects(driver.powerVm(vm.id, 'shutdown', ctx()), (err) => {
          assert.ok(isDriverError(err), `expected a DriverError, got ${String(err)}`);
          assert.ok(err.code === 'host_error' || err.code === 'invalid_state', `${err.code}: ${err.message}`);
          return true;
        });
        assert.equal((await find(vm.id))?.powerState, 'on', 'a shutdown the guest ignored leaves the VM on');
      }
      assert.equal((await driver.powerVm(vm.id, 'off', ctx())).powerState, 'off');
      assert.equal((await find(vm.id))?.powerState, 'off');
      await rejectsWithCode(driver.powerVm(vm.id, 'suspend' as 'on', ctx()), 'invalid_spec');
    });

    it('renames in any state, changes vCPUs and memory only when off', async () => {
      const vm = await create();
      const other = await create();
      const off = await driver.updateVm(vm.id, { vcpus: 2, memoryMB: 256 }, ctx());
      assert.deepEqual(off, { ...vm, vcpus: 2, memoryMB: 256 });
      assert.deepEqual(await find(vm.id), off);
      await driver.powerVm(vm.id, 'on', ctx());
      const renamed = await driver.updateVm(vm.id, { name: `${vm.name}-r` }, ctx());
      assert.equal(renamed.name, `${vm.name}-r`);
      assert.equal((await find(vm.id))?.name, `${vm.name}-r`);
      await rejectsWithCode(driver.updateVm(vm.id, { vcpus: 1 }, ctx()), 'invalid_state');
      await rejectsWithCode(driver.updateVm(vm.id, { memoryMB: 512 }, ctx()), 'invalid_state');
      assert.deepEqual(await driver.updateVm(vm.id, { vcpus: 2, memoryMB: 256 }, ctx()), renamed, 'same values: no change, any state');
      await rejectsWithCode(driver.updateVm(vm.id, { name: other.name }, ctx()), 'invalid_spec');
      await rejectsWithCode(driver.updateVm(vm.id, {} as never, ctx()), 'invalid_spec');
      assert.deepEqual(await find(vm.id), renamed, 'refused patches changed nothing');
    });

    it('deletes only a VM that is off; deleting it again is not_found', async () => {
      const vm = await create();
      await driver.powerVm(vm.id, 'on', ctx());
      await rejectsWithCode(driver.deleteVm(vm.id, ctx()), 'invalid_state');
      assert.ok(await find(vm.id), 'still there');
      await driver.powerVm(vm.id, 'off', ctx());
      await driver.deleteVm(vm.id, ctx());
      assert.equal(await find(vm.id), undefined);
      await rejectsWithCode(driver.deleteVm(vm.id, ctx()), 'not_found');
      // Its name is free again.
      await create({ name: vm.name });
    });

    it('answers not_found for an unknown VM id', async () => {
      const id = `no-such-vm-${randomBytes(4).toString('hex')}`;
      await rejectsWithCode(driver.powerVm(id, 'on', ctx()), 'not_found');
      await rejectsWithCode(driver.updateVm(id, { name: 'x' }, ctx()), 'not_found');
      await rejectsWithCode(driver.deleteVm(id, ctx()), 'not_found');
    });

    it('rejects with the signal reason when aborted, before or during an operation', async () => {
      const count = (await driver.listVms()).length;
      const reason = new Error('cancelled by operator');
      await assert.rejects(driver.createVm(spec(), recordingContext(AbortSignal.abort(reason))), (err) => err === reason);
      assert.equal((await driver.listVms()).length, count, 'aborted before it started: no effect');

      const vm = await create();
      const controller = new AbortController();
      const c: OperationContext = {
        signal: controller.signal,
        progress: (pct) => {
          if (pct < 100) controller.abort(reason);
        },
      };
      await assert.rejects(driver.powerVm(vm.id, 'on', c), (err) => err === reason);
    });

    it('refuses calls once closed, with unavailable', async () => {
      const vm = await create();
      await driver.close();
      await driver.close();
      await rejectsWithCode(driver.listVms(), 'unavailable');
      await rejectsWithCode(driver.powerVm(vm.id, 'on', ctx()), 'unavailable');
      driver = await makeDriver();
    });
  });
}
