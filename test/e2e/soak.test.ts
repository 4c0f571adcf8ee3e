/**
 * The fault soak (docs/soak.md), short: the same `runSoak` as `npm run soak`, for about two
 * minutes of faults with ten agents, on three managers, Mosquitto, PostgreSQL and nginx. It
 * needs root for iptables' packet loss, as CI has.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mosquittoMissingReason, nginxMissingReason, pgSkipReason, skipUnless } from '@pallas/testkit';
import { packetLossMissingReason } from '../../scripts/soak/packet-loss.js';
import { printSoakReport, runSoak } from '../../scripts/soak/run-soak.js';

describe('fault soak', { skip: skipUnless(pgSkipReason, mosquittoMissingReason(), nginxMissingReason(), packetLossMissingReason()) }, () => {
  it('tasks through loss, delay, outages and SIGKILLs: none lost, none run twice, none stuck', { timeout: 15 * 60_000 }, async () => {
    const report = await runSoak({
      minutes: 2,
      agents: 10,
      settleSec: 180,
      ...(process.env.PALLAS_SOAK_SEED ? { seed: Number(process.env.PALLAS_SOAK_SEED) } : {}),
      log: (line) => console.log(`# ${line}`),
    });
    printSoakReport(report, (line) => console.log(`# ${line}`));
    const why = `seed ${report.seed} (replay: PALLAS_SOAK_SEED=${report.seed}):\n${report.problems.join('\n')}`;
    assert.ok(report.submitted > 0, 'tasks were submitted');
    assert.ok(Object.values(report.faults).reduce((a, b) => a + b, 0) > 0, 'faults were injected');
    assert.equal(report.lost, 0, `lost, ${why}`);
    assert.equal(report.duplicated, 0, `duplicated, ${why}`);
    assert.equal(report.stuck, 0, `stuck, ${why}`);
    assert.ok(report.ok, `not every device came back, ${why}`);
    // Failed tasks are allowed only with a reason the operator can act on.
    for (const reason of Object.keys(report.failed)) assert.doesNotMatch(reason, /no code|internal/, `a task failed without a clear reason: ${reason}`);
  });
});
