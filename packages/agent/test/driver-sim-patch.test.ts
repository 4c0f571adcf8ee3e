import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ArtifactManifest } from '@pallas/protocol';
import { tempDir } from '@pallas/testkit';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { patchUnsupportedReason } from '../src/drivers/patch-support.js';

describe('sim driver: applyPatch', () => {
  const dir = tempDir('pallas-sim-patch-');
  after(() => dir.cleanup());
  const bytes = Buffer.from('sim patch payload '.repeat(1000));
  const file = join(dir.path, 'patch.bin');
  writeFileSync(file, bytes);
  const manifest: ArtifactManifest = { id: 'art_patch00001', kind: 'patch', name: 'edge-os', version: '7.0.3-u2', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };

  it("makes the patch's name and version the host's build, with progress, kept in the state file; again is a no-op", async () => {
    const stateFile = join(dir.path, 'sim-host.json');
    const sim = new SimDriver({ seed: 5, latencyMs: 10, stateFile });
    const before = (await sim.hostFacts()).hypervisor.build;
    const steps: number[] = [];
    await sim.applyPatch(file, manifest, { signal: new AbortController().signal, progress: (pct) => steps.push(pct) });
    assert.equal((await sim.hostFacts()).hypervisor.build, 'edge-os 7.0.3-u2');
    assert.notEqual(before, 'edge-os 7.0.3-u2');
    assert.equal(steps[0], 0);
    assert.equal(steps.at(-1), 100);
    assert.deepEqual(steps, [...steps].sort((a, b) => a - b), 'progress never goes down');
    await sim.close();

    const again = new SimDriver({ seed: 5, latencyMs: 10, stateFile });
    assert.equal((await again.hostFacts()).hypervisor.build, 'edge-os 7.0.3-u2', 'the patch outlives the process');
    const calls: number[] = [];
    await again.applyPatch(file, manifest, { signal: new AbortController().signal, progress: (pct) => calls.push(pct) });
    assert.deepEqual(calls, [], 'the same patch again changes nothing');
    await again.close();
  });

  it('refuses an artifact that is not a patch, or a file of another size, with invalid_spec and no change', async () => {
    const sim = new SimDriver({ seed: 5, latencyMs: 0 });
    const build = (await sim.hostFacts()).hypervisor.build;
    const ctx = { signal: new AbortController().signal, progress: () => {} };
    await assert.rejects(sim.applyPatch(file, { ...manifest, kind: 'ova' }, ctx), { code: 'invalid_spec', message: 'artifact art_patch00001 is an ova, not a patch' });
    await assert.rejects(sim.applyPatch(file, { ...manifest, size: bytes.length + 1 }, ctx), { code: 'invalid_spec', message: new RegExp(`has ${bytes.length} bytes, its manifest says ${bytes.length + 1}`) });
    await assert.rejects(sim.applyPatch(file, manifest, { ...ctx, signal: AbortSignal.abort(new Error('stop')) }), { message: 'stop' });
    assert.equal((await sim.hostFacts()).hypervisor.build, build);
    await sim.close();
  });

  it('fails on purpose with failOn.applyPatch', async () => {
    const sim = new SimDriver({ seed: 5, latencyMs: 0, failOn: { applyPatch: 'host_error' } });
    await assert.rejects(sim.applyPatch(file, manifest, { signal: new AbortController().signal, progress: () => {} }), { code: 'host_error', message: /injected failure/ });
    await sim.close();
  });

  it('says why qemu and esxi cannot patch their host', () => {
    assert.match(patchUnsupportedReason('qemu'), /Linux machine the agent runs on, which its own package manager patches/);
    assert.match(patchUnsupportedReason('esxi'), /maintenance mode .* reboot.*no HostPatchManager/);
  });
});
