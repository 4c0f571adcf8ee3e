import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError, DriverErrorCodes } from '../../driver-error.js';
import type { OperationContext } from '../../driver.js';
import { faultError, readMethodFault } from './faults.js';
import { retrieveOne } from './property-collector.js';
import type { VsphereClient } from './soap-client.js';
import { child, num, readMoRef, text, type MoRef, type XmlNode } from './xml.js';

/** Polling interval of a running task: starts short (most edge-host tasks take < 1 s), grows to 1 s. */
const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1_000;

/**
 * Waits for a vSphere task through the property collector, reporting its progress to `ctx`
 * (between `from` and `to` percent of the whole operation). Resolves with `info.result` (for
 * CreateVM_Task, the new VM's reference); a task that ends in error rejects with the host's
 * fault mapped to a `DriverError`, `what` naming the operation.
 *
 * On abort, the task is asked to cancel (best effort: most VM tasks cannot be) and the wait
 * rejects with the signal's reason.
 */
export async function waitForTask(client: VsphereClient, task: MoRef, what: string, ctx: OperationContext, from = 0, to = 100): Promise<XmlNode | string | undefined> {
  let delay = FIRST_POLL_MS;
  let last = -1;
  for (;;) {
    if (ctx.signal.aborted) {
      await client.call('CancelTask', task, {}, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      throw ctx.signal.reason;
    }
    const found = await retrieveOne(client, task, ['info'], { signal: ctx.signal });
    const info = found?.props.get('info');
    if (info === undefined || typeof info === 'string') {
      throw new DriverError(DriverErrorCodes.HOST_ERROR, `${what}: the host lost track of its task ${task.value}`);
    }
    const state = text(info, 'state');
    if (state === 'success') {
      ctx.progress(to);
      return (child(info, 'result') ?? text(info, 'result')) as XmlNode | string | undefined;
    }
    if (state === 'error') {
      const error = child(info, 'error');
      if (error === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, `${what}: the host's task failed without saying why`);
      throw faultError(readMethodFault(error), what);
    }
    const pct = num(info, 'progress');
    if (pct !== undefined) {
      const scaled = Math.floor(from + ((to - from) * Math.min(100, Math.max(0, pct))) / 100);
      if (scaled > last) {
        last = scaled;
        ctx.progress(scaled, what);
      }
    }
    try {
      await sleep(delay, undefined, { signal: ctx.signal });
    } catch {
      // aborted: handled at the top of the loop
    }
    delay = Math.min(MAX_POLL_MS, delay * 2);
  }
}

/** Reads the `returnval` of a `…_Task` method: the task's reference. */
export function taskRef(response: XmlNode): MoRef {
  const ref = readMoRef(child(response, 'returnval'));
  if (ref === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, 'the host did not return a task');
  return ref;
}
