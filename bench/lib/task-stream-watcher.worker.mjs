// The thread of task-stream-watcher.ts: reads GET /api/v1/events and posts each task's first
// final state with the absolute time it arrived. It shares the machine's cores with the manager
// and the simulated fleet, so it does little per event: a fan-out brings several events per
// task (sent, running, ...), and only the few with a final state are parsed.
import { parentPort, workerData } from 'node:worker_threads';

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
const MAYBE_FINAL = [...FINAL].map((s) => `"state":"${s}"`);
const { url, token } = workerData;

const res = await fetch(`${url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` } });
if (!res.ok || !res.body) throw new Error(`live stream: HTTP ${res.status}`);
parentPort.postMessage({ open: true });
const seen = new Set();
const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of res.body) {
  buffer += decoder.decode(chunk, { stream: true });
  let start = 0;
  let end;
  while ((end = buffer.indexOf('\n\n', start)) >= 0) {
    const event = buffer.slice(start, end);
    start = end + 2;
    if (!event.includes('event: task') || !MAYBE_FINAL.some((s) => event.includes(s))) continue;
    const data = event.split('\n').find((l) => l.startsWith('data: '));
    if (!data) continue;
    const e = JSON.parse(data.slice(6));
    if (e.type !== 'task' || !FINAL.has(e.task.state) || seen.has(e.task.id)) continue;
    seen.add(e.task.id);
    const at = performance.timeOrigin + performance.now();
    parentPort.postMessage({ taskId: e.task.id, state: e.task.state, at, ...(e.task.error ? { message: e.task.error.message } : {}) });
  }
  buffer = buffer.slice(start);
}
