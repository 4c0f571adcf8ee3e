// The thread of task-stream-watcher.ts: reads GET /api/v1/events and posts each task's first
// final state with the absolute time it arrived.
import { parentPort, workerData } from 'node:worker_threads';

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
const { url, token } = workerData;

const res = await fetch(`${url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` } });
if (!res.ok || !res.body) throw new Error(`live stream: HTTP ${res.status}`);
parentPort.postMessage({ open: true });
const seen = new Set();
const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of res.body) {
  buffer += decoder.decode(chunk, { stream: true });
  let end;
  while ((end = buffer.indexOf('\n\n')) >= 0) {
    const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data: '));
    buffer = buffer.slice(end + 2);
    if (!data) continue;
    const e = JSON.parse(data.slice(6));
    if (e.type !== 'task' || !FINAL.has(e.task.state) || seen.has(e.task.id)) continue;
    seen.add(e.task.id);
    const at = performance.timeOrigin + performance.now();
    parentPort.postMessage({ taskId: e.task.id, state: e.task.state, at, ...(e.task.error ? { message: e.task.error.message } : {}) });
  }
}
