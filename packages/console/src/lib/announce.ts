import type { Task } from '@pallas/protocol';
import { describeOperation } from './task-text.js';

/**
 * What the console's live region says (components/LiveAnnouncer.tsx): the progress of the
 * user's own tasks and devices going offline, as short sentences. A screen reader reads each
 * change of the region; a burst (a rollout, a site losing power) becomes one summary sentence
 * instead of a queue of hundreds.
 */
export type Announcement =
  | { kind: 'task'; task: Task; text: string }
  | { kind: 'offline'; deviceId: string; name?: string };

const STATE_WORDS: Record<Task['state'], string> = {
  queued: 'queued', sent: 'sent to the device', running: 'running', succeeded: 'succeeded',
  failed: 'failed', cancelled: 'cancelled', timed_out: 'timed out',
};

/** Progress is said in quarters: often enough to follow, rarely enough to listen to. */
const STEP = 25;

export interface TaskMemory {
  state: Task['state'];
  step: number;
}

/**
 * The sentence for a task's new state or progress, or null when nothing worth saying changed
 * since `before` (what was last said about it).
 */
export function taskAnnouncement(task: Task, before: TaskMemory | undefined): { text: string; memory: TaskMemory } | null {
  const step = task.state === 'running' ? Math.floor(task.progress.pct / STEP) * STEP : 0;
  const memory = { state: task.state, step };
  const what = describeOperation(task.operation, task.vm?.name);
  if (!before || before.state !== task.state) {
    const error = task.error && (task.state === 'failed' || task.state === 'timed_out') ? `: ${task.error.message}` : '';
    return { text: `${what}: ${STATE_WORDS[task.state]}${error}.`, memory };
  }
  if (task.state === 'running' && step > before.step && step > 0 && step < 100) return { text: `${what}: ${step} %.`, memory };
  return null;
}

/** The one sentence for what happened since the last one was said. */
export function summarize(items: Announcement[], shownPerKind = 3): string {
  // A task that moved twice since the last sentence is said once, as it is now.
  const tasks = [...new Map(items.filter((i): i is Extract<Announcement, { kind: 'task' }> => i.kind === 'task').map((i) => [i.task.id, i])).values()];
  const offline = [...new Map(items.filter((i): i is Extract<Announcement, { kind: 'offline' }> => i.kind === 'offline').map((i) => [i.deviceId, i])).values()];
  const parts: string[] = [];
  if (tasks.length > shownPerKind) {
    const counts = new Map<string, number>();
    for (const { task } of tasks) counts.set(STATE_WORDS[task.state], (counts.get(STATE_WORDS[task.state]) ?? 0) + 1);
    parts.push(`${tasks.length} of your tasks changed: ${[...counts].map(([w, n]) => `${n} ${w}`).join(', ')}.`);
  } else {
    parts.push(...tasks.map((t) => t.text));
  }
  if (offline.length > shownPerKind) parts.push(`${offline.length} devices went offline.`);
  else parts.push(...offline.map((o) => `Device ${o.name ?? o.deviceId} went offline.`));
  return parts.join(' ');
}
