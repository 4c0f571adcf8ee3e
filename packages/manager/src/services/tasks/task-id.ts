import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/**
 * `tsk_` + time (ms, 9 base-36 digits) + a counter within that millisecond (4 digits) + 8
 * random digits. Ids sort by creation time, and strictly in creation order within this
 * process, which is what the outbox relies on to send a device's tasks in order.
 */
export function newTaskId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else {
    counter++;
  }
  const random = BigInt(`0x${randomBytes(6).toString('hex')}`).toString(36).padStart(10, '0').slice(-8);
  return `tsk_${lastMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${random}`;
}

/** The smallest id a task created at `ms` or later can have: a lower bound for id ranges. */
export function taskIdFloor(ms: number): string {
  return `tsk_${Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0')}`;
}
