import { appendFileSync } from 'node:fs';

// The agent has the same hook (packages/agent/src/util/test-hold.ts): the two share only the
// protocol package, which is the wire contract and no place for test hooks.

/** The hold point armed for this process, read once: unset everywhere but in crash tests. */
const ARMED = process.env.PALLAS_TEST_HOLD;
const FILE = process.env.PALLAS_TEST_HOLD_FILE;

/**
 * A test hook for crash windows (docs/testing.md, "Crash windows"). Some windows are a few
 * microseconds wide, e.g. after a task is marked sent in the store and before its command is
 * published; a test cannot hit them with a timed kill. With `PALLAS_TEST_HOLD=<point>` and
 * `PALLAS_TEST_HOLD_FILE=<file>` set, reaching `point` appends `{point, …detail}` to the file
 * and returns a promise that never settles, so that the code after it never runs and the test
 * kills the process (SIGKILL) inside the window. Unarmed (in production, and in every other
 * test) it returns undefined and the caller goes on at once:
 *
 *   const held = testHold('manager.task-sent', { taskIds });
 *   if (held) await held;
 */
export function testHold(point: string, detail: Record<string, unknown>): Promise<never> | undefined {
  if (ARMED !== point || FILE === undefined) return undefined;
  appendFileSync(FILE, `${JSON.stringify({ point, ...detail, pid: process.pid })}\n`);
  return new Promise<never>(() => {});
}
