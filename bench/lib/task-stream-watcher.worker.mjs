// The thread of task-stream-watcher.ts: follows the live stream with the client's follower and
// posts each task's first final state with the absolute time it arrived. It shares the
// machine's cores with the manager and the simulated fleet, so it does little per event: a
// fan-out brings several events per task (sent, running, ...), and only the few with a final
// state are decoded (the follower hands over each event's data undecoded).
import { parentPort, workerData } from 'node:worker_threads';
import { PallasClient } from '@pallas/client';

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
const MAYBE_FINAL = [...FINAL].map((s) => `"state":"${s}"`);
const { url, token } = workerData;

const stream = new PallasClient({ server: url, token }).followRaw({}, { maxReconnects: Infinity });
await stream.opened;
parentPort.postMessage({ open: true });
const seen = new Set();
for await (const { event, data } of stream) {
  if (event !== 'task' || !MAYBE_FINAL.some((s) => data.includes(s))) continue;
  const e = JSON.parse(data);
  if (!FINAL.has(e.task.state) || seen.has(e.task.id)) continue;
  seen.add(e.task.id);
  const at = performance.timeOrigin + performance.now();
  parentPort.postMessage({ taskId: e.task.id, state: e.task.state, at, ...(e.task.error ? { message: e.task.error.message } : {}) });
}
