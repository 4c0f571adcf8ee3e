import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PowerAction, VmPatch, VmSpec, checker } from '@pallas/protocol';

const spec = checker(VmSpec);
const patch = checker(VmPatch);
const action = checker(PowerAction);
const base = { name: 'web-01', vcpus: 2, memoryMB: 2048, diskGB: 32 };

describe('VM operation schemas', () => {
  it('accepts a plain spec and the optional fields', () => {
    assert.ok(spec.check(base));
    assert.ok(spec.check({ ...base, name: 'Store 12 POS.a_b', network: 'VM Network', bootImage: '[datastore1] iso/debian.iso', diskGB: 0.5 }));
    assert.ok(spec.check({ ...base, name: 'x'.repeat(80), vcpus: 128, memoryMB: 1_048_576, diskGB: 65_536 }));
  });

  it('rejects names, sizes and keys outside the limits', () => {
    for (const name of ['', ' lead', 'trail ', 'a/b', 'é', 'x'.repeat(81)]) assert.ok(!spec.check({ ...base, name }), name);
    assert.ok(!spec.check({ ...base, vcpus: 0 }));
    assert.ok(!spec.check({ ...base, vcpus: 1.5 }));
    assert.ok(!spec.check({ ...base, memoryMB: 63 }));
    assert.ok(!spec.check({ ...base, diskGB: 0 }));
    assert.ok(!spec.check({ ...base, diskGB: 65_537 }));
    assert.ok(!spec.check({ ...base, network: '' }));
    assert.match(spec.explain({ ...base, extra: 1 }), /extra/);
    const { diskGB: _, ...noDisk } = base;
    assert.ok(!spec.check(noDisk));
  });

  it('wants at least one field in a patch', () => {
    assert.ok(!patch.check({}));
    assert.ok(patch.check({ name: 'renamed' }));
    assert.ok(patch.check({ vcpus: 4, memoryMB: 4096 }));
    assert.ok(!patch.check({ diskGB: 10 }));
  });

  it('knows the four power actions', () => {
    for (const a of ['on', 'off', 'reset', 'shutdown']) assert.ok(action.check(a));
    assert.ok(!action.check('suspend'));
  });
});
