import { appendFileSync } from 'node:fs';

/** The hold point armed for this process, read once: unset everywhere but in crash tests. */
const ARMED = process.env.PALLAS_TEST_HOLD;
const FILE = process.env.PALLAS_TEST_HOLD_FILE;

/**
 * A test hook for crash windows (docs/testing.md, "Crash windows"). Some windows are a few
 * microseconds wide, e.g. after the hypervisor made a VM and before the task's result is
 * journaled; a test cannot hit them with a timed kill. With `PALLAS_TEST_HOLD=<point>` and
 * `PALLAS_TEST_HOLD_FILE=<file>` set, reaching `point` appends `{point, …detail}` to the file
 * and returns a promise that never settles, so that the code after it never runs and the test
 * kills the process (SIGKILL) inside the window. Unarmed (in production, and in every other
 * test) it returns undefined and the caller goes on at once:
 *
 *   const held = testHold('agent.task-acted', { taskId });
 *   if (held) await held;
 */
export function testHold(point: string, detail: Record<string, unknown>): Promise<never> | undefined {
  if (ARMED !== point || FILE === undefined) return undefined;
  appendFileSync(FILE, `${JSON.stringify({ point, ...detail, pid: process.pid })}\n`);
  return new Promise<never>(() => {});
}
