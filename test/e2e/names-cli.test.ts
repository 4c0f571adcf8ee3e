/**
 * The CLI against a real manager for issue #18 points 1, 8 and 9: tasks listed by a device's
 * name (`--device <name>`, the DEVICE and VM columns in names), the audit log with names, the
 * task each request started and the reason of refused calls, `--hide-logins`, and
 * `pallas audit export` as CSV on stdout and as JSON into a file.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry, Task } from '@pallas/protocol';
import { ADMIN_PASSWORD, createEnrollmentToken, sampleHostFacts, startManagerProcess, tempDir, type Api, type ManagerProcess } from '@pallas/testkit';
import { pallas } from './support/cli.js';

let manager: ManagerProcess;
let admin: Api;
const config = tempDir('pallas-cli-names-').path;
const deviceId = randomUUID();
let cancelled: Task;

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  const token = await createEnrollmentToken(admin, { name: 'names-cli', maxUses: 2 });
  const enrolled = await manager.api.post('/api/v1/enroll', { token, deviceId, facts: sampleHostFacts('kiosk-07') });
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
  const login = await pallas(config, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
  assert.equal(login.code, 0, login.stderr);
  // Queued (the device is offline), then cancelled: the request was ok, its task was not.
  cancelled = (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'pos-1', vcpus: 1, memoryMB: 256, diskGB: 1 })).body;
  assert.equal((await admin.post(`/api/v1/tasks/${cancelled.id}/cancel`)).status, 202);
  // A refused call: its reason goes into the log.
  assert.equal((await admin.delete('/api/v1/users/no-such-user')).status, 404);
});

after(async () => manager?.close());

describe('names in the CLI against a manager', () => {
  it('lists tasks by the device name, with names in the table', async () => {
    const r = await pallas(config, ['tasks', 'ls', '--device', 'kiosk-07']);
    assert.equal(r.code, 0, r.stderr);
    const row = r.stdout.split('\n').find((l) => l.startsWith(cancelled.id));
    assert.ok(row, r.stdout);
    assert.match(row, / vm\.create +kiosk-07 +pos-1 +cancelled /);
  });

  it('shows the audit log with names, the task outcome and the reason; hides sign-ins', async () => {
    const r = await pallas(config, ['audit', '--hide-logins', '--since', '1h']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^TIME +ACTOR +ACTION +TARGET +OUTCOME +REASON +FROM$/m);
    assert.match(r.stdout, / vm\.create +device:kiosk-07 +ok; task cancelled +cancelled: /);
    assert.match(r.stdout, / user\.delete +user:no-such-user +failed +not_found: /);
    assert.ok(!/ login\.ok /.test(r.stdout), 'sign-ins hidden');
    const all = await pallas(config, ['audit', '--since', '1h']);
    assert.match(all.stdout, / login\.ok /);
    const byName = JSON.parse((await pallas(config, ['audit', '--target', 'kiosk-07', '--json'])).stdout) as { items: AuditEntry[] };
    assert.ok(byName.items.length >= 1 && byName.items.every((e) => e.target?.id === deviceId));
  });

  it('exports the log as CSV on stdout and as JSON into a file, with the same filters', async () => {
    const csv = await pallas(config, ['audit', 'export', '--action', 'vm.']);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trimEnd().split('\r\n');
    assert.match(lines[0]!, /^id,at,actor_kind,/);
    assert.equal(lines.length, 2, csv.stdout);
    assert.match(lines[1]!, new RegExp(`,vm\\.create,device,${deviceId},kiosk-07,ok,,${cancelled.id},cancelled,`));

    const file = join(tempDir('pallas-cli-export-').path, 'audit.json');
    const json = await pallas(config, ['audit', 'export', '--format', 'json', '--hide-logins', '-o', file]);
    assert.equal(json.code, 0, json.stderr);
    assert.match(json.stderr, /Wrote the audit log to /);
    const entries = JSON.parse(readFileSync(file, 'utf8')) as AuditEntry[];
    assert.ok(entries.length >= 3);
    assert.ok(entries.every((e) => !e.action.startsWith('login.')));
    assert.ok(entries.some((e) => e.task?.id === cancelled.id && e.task.state === 'cancelled'));
  });
});
