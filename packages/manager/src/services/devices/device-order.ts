/**
 * The order in which device rows are locked and written: by id. Managers sharing a database
 * update the same rows (the status buffer, the inventory), and rows locked in different orders
 * deadlock. Functions of the module rather than closures made at each flush: V8 compiles a
 * closure made per call again after every major GC (see task-reports.ts, `#work`).
 */

/** Sorts `[deviceId, …]` entries by device id. */
export function byDeviceId([a]: readonly [string, unknown], [b]: readonly [string, unknown]): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The device id of a `[deviceId, …]` entry. */
export function deviceIdOf([id]: readonly [string, unknown]): string {
  return id;
}
