/**
 * The console's pure modules, run in Node: the VM form's checks, the agent command (which must
 * equal the CLI's), the task wording, name limits and what the live region says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Task } from '@pallas/protocol';
import { agentCommand } from '../src/lib/agent-command.js';
import { summarize, taskAnnouncement } from '../src/lib/announce.js';
import { lengthError } from '../src/lib/limits.js';
import { errorWords, retryAdvice, taskStatusText } from '../src/lib/task-text.js';
import { validateVm } from '../src/lib/vm-form.js';

describe('console: VM form', () => {
  it('names every field that is out of bounds', () => {
    assert.deepEqual(validateVm({ name: 'web-1', vcpus: '2', memoryMB: '2048', diskGB: '20' }), {});
    const errors = validateVm({ name: ' bad', vcpus: '0', memoryMB: '32', diskGB: '0' });
    assert.deepEqual(Object.keys(errors).sort(), ['diskGB', 'memoryMB', 'name', 'vcpus']);
    assert.match(errors.vcpus!, /between 1 and 128/);
  });
});

describe('console: wording', () => {
  it('prints the agent command the CLI prints', () => {
    assert.equal(agentCommand('http://10.0.0.5:8080', 'pet_abc-DEF_1'),
      'npx pallas-agent --manager http://10.0.0.5:8080 --token pet_abc-DEF_1 --state-dir /var/lib/pallas-agent');
    assert.equal(agentCommand('http://x', "it's"), "npx pallas-agent --manager http://x --token 'it'\\''s' --state-dir /var/lib/pallas-agent");
  });

  it('says where a waiting task is, and why', () => {
    const task = { state: 'queued', cancelRequested: false, progress: { pct: 0, message: null }, error: null } as unknown as Task;
    assert.equal(taskStatusText(task, 'offline'), 'Queued — device offline, will run when it reconnects');
    assert.equal(taskStatusText(task, 'offline', 'blocked'), 'Queued — device blocked, runs once it is unblocked and reconnects');
    assert.equal(taskStatusText(task, 'offline', 'pending'), 'Queued — device waiting for approval, runs once it is approved and connects');
    assert.equal(taskStatusText({ ...task, state: 'sent' }), 'Sent to device, waiting for it to start');
    assert.equal(taskStatusText({ ...task, state: 'running', cancelRequested: true }), 'Cancel requested — waiting for the device to answer');
  });
});

describe('console: why a task ended, and whether to retry (issue #18 point 8)', () => {
  const ended = (over: Partial<Task>) => ({ state: 'failed', cancelRequested: false, progress: { pct: 0, message: null }, error: null, lateResult: null, ...over }) as unknown as Task;

  it('offers Retry only when the code says it can help', () => {
    assert.equal(retryAdvice(ended({ error: { code: 'host_error', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ error: { code: 'unavailable', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ error: { code: 'some_future_code', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ state: 'timed_out' })).offer, true);
    const notFound = retryAdvice(ended({ error: { code: 'not_found', message: 'x' } }));
    assert.equal(notFound.offer, false);
    assert.match(notFound.why!, /fail the same way/);
    assert.equal(retryAdvice(ended({ error: { code: 'invalid_spec', message: 'x' } })).offer, false);
    assert.equal(retryAdvice(ended({ state: 'succeeded' })).offer, false);
    assert.equal(retryAdvice(ended({ state: 'timed_out', lateResult: { outcome: 'succeeded', at: '2026-01-01T00:00:00Z' } })).offer, false);
  });

  it('says a late result plainly, and an error in words', () => {
    const late = ended({ state: 'timed_out', lateResult: { outcome: 'succeeded', at: '2026-01-01T00:00:00Z' } });
    assert.equal(taskStatusText(late), 'Timed out; the device finished it later: succeeded');
    assert.deepEqual(errorWords({ code: 'no_space', message: 'datastore1 has 2 GB free' }), {
      words: 'Not enough datastore space or free memory on the device: datastore1 has 2 GB free', code: 'no_space',
    });
    assert.equal(errorWords({ code: 'brand_new', message: 'it broke' }).words, 'it broke');
  });
});

describe('console: name limits', () => {
  it('says how long a name is and the limit, and never cuts it', () => {
    assert.equal(lengthError('n'.repeat(300), 80), 'Too long: 300 characters; the limit is 80');
    assert.equal(lengthError('n'.repeat(80), 80), undefined);
    assert.equal(validateVm({ name: 'n'.repeat(81), vcpus: '1', memoryMB: '64', diskGB: '1' }).name, 'Too long: 81 characters; the limit is 80');
  });
});

describe('console: live announcements', () => {
  const task = (id: string, state: Task['state'], pct = 0) => ({
    id, state, progress: { pct, message: null }, error: null, vm: null,
    operation: { kind: 'vm.create', spec: { name: `vm-${id}`, vcpus: 1, memoryMB: 64, diskGB: 1 } },
  }) as unknown as Task;

  it('says a task\'s state changes and its progress in quarters, nothing in between', () => {
    const first = taskAnnouncement(task('a', 'running', 10), undefined)!;
    assert.equal(first.text, 'Create VM vm-a: running.');
    assert.equal(taskAnnouncement(task('a', 'running', 20), first.memory), null);
    const half = taskAnnouncement(task('a', 'running', 55), first.memory)!;
    assert.equal(half.text, 'Create VM vm-a: 50 %.');
    assert.equal(taskAnnouncement(task('a', 'succeeded', 100), half.memory)!.text, 'Create VM vm-a: succeeded.');
  });

  it('says one task once per sentence, and a burst as counts', () => {
    const said = (t: Task) => ({ kind: 'task' as const, task: t, text: taskAnnouncement(t, undefined)!.text });
    assert.equal(summarize([said(task('a', 'queued')), said(task('a', 'running')), said(task('a', 'succeeded'))]), 'Create VM vm-a: succeeded.');
    const burst = ['a', 'b', 'c', 'd'].map((id, i) => said(task(id, i === 0 ? 'failed' : 'succeeded')));
    assert.equal(summarize(burst), '4 of your tasks changed: 1 failed, 3 succeeded.');
    const offline = Array.from({ length: 12 }, (_, i) => ({ kind: 'offline' as const, deviceId: `d${i}` }));
    assert.equal(summarize(offline), '12 devices went offline.');
    assert.equal(summarize([{ kind: 'offline', deviceId: 'd1', name: 'edge-1' }]), 'Device edge-1 went offline.');
  });
});
