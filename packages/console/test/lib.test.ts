/**
 * The console's pure modules, run in Node: the SSE parser, the VM limits (which must equal the
 * protocol's schema), the agent command (which must equal the CLI's) and the task wording.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ARTIFACT_KINDS as PROTOCOL_KINDS, VmSpec, type Task } from '@pallas/protocol';
import { ARTIFACT_KINDS } from '../src/lib/artifact-kinds.js';
import { formatBytes } from '../src/lib/format.js';
import { uploadErrorText } from '../src/lib/upload-error.js';
import { agentCommand } from '../src/lib/agent-command.js';
import { taskStatusText } from '../src/lib/task-text.js';
import { VM_LIMITS, validateVm } from '../src/lib/vm-limits.js';
import { SseParser } from '../src/live/sse-parser.js';

describe('console: SSE parser', () => {
  it('splits events across arbitrary chunks, skips comments, keeps ids and names', () => {
    const parser = new SseParser();
    const text = 'retry: 2000\n: connected\n\nid: 7\nevent: task\ndata: {"a":\ndata: 1}\n\n: keepalive\n\nevent: reset\ndata: {"type":"reset"}\r\n\r\n';
    const events = [...text].flatMap((ch) => parser.push(ch));
    assert.deepEqual(events, [
      { event: 'task', id: '7', data: '{"a":\n1}' },
      { event: 'reset', id: undefined, data: '{"type":"reset"}' },
    ]);
  });
});

describe('console: VM limits', () => {
  it('are the protocol VmSpec limits', () => {
    const p = VmSpec.properties as unknown as Record<string, Record<string, unknown>>;
    assert.equal(VM_LIMITS.name.maxLength, p.name!.maxLength);
    assert.equal(VM_LIMITS.name.minLength, p.name!.minLength);
    assert.equal(VM_LIMITS.name.pattern, p.name!.pattern);
    assert.equal(VM_LIMITS.vcpus.minimum, p.vcpus!.minimum);
    assert.equal(VM_LIMITS.vcpus.maximum, p.vcpus!.maximum);
    assert.equal(VM_LIMITS.memoryMB.minimum, p.memoryMB!.minimum);
    assert.equal(VM_LIMITS.memoryMB.maximum, p.memoryMB!.maximum);
    assert.equal(VM_LIMITS.diskGB.exclusiveMinimum, p.diskGB!.exclusiveMinimum);
    assert.equal(VM_LIMITS.diskGB.maximum, p.diskGB!.maximum);
  });

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

describe('console: artifacts', () => {
  it('knows the protocol\'s artifact kinds', () => {
    assert.deepEqual([...ARTIFACT_KINDS], [...PROTOCOL_KINDS]);
  });
  it('writes sizes in binary units', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.50 KiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
    assert.equal(formatBytes(150 * 1024 ** 2), '150 MiB');
  });
  it('keeps the manager\'s message for a refused upload, and says something readable without one', () => {
    const e409 = uploadErrorText(409, 'Conflict', JSON.stringify({ error: { code: 'conflict', message: 'artifact ova x 1 already exists' } }));
    assert.equal(e409.message, 'artifact ova x 1 already exists');
    assert.equal(e409.code, 'conflict');
    assert.match(uploadErrorText(413, 'Payload Too Large', '<html>nginx</html>').message, /larger than the manager accepts/);
    assert.match(uploadErrorText(502, 'Bad Gateway', '').message, /502 Bad Gateway/);
  });
});
