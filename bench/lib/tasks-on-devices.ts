/**
 * What a simulated fleet's agents did with each task, from their own events: how many times
 * each was handed to the driver (a second time is a task run twice), and when the last start
 * was journaled (`task-started`) and its result journaled (`task-finished`), on this process's
 * clock (the task stream watcher's `absoluteNow`).
 */
import type { Agent } from '@pallas/agent';
import { absoluteNow } from './task-stream-watcher.js';

export interface TaskOnDevice {
  runs: number;
  started: number;
  finished?: number;
}

/** A log to fill through `startFleet`'s `onAgent`, read by task id. */
export function tasksOnDevices(): { tasks: ReadonlyMap<string, TaskOnDevice>; onAgent: (agent: Agent) => void } {
  const tasks = new Map<string, TaskOnDevice>();
  return {
    tasks,
    onAgent: (agent) => {
      agent.on('task-started', (taskId) => tasks.set(taskId, { runs: (tasks.get(taskId)?.runs ?? 0) + 1, started: absoluteNow() }));
      agent.on('task-finished', (result) => {
        const t = tasks.get(result.taskId);
        if (t) t.finished = absoluteNow();
      });
    },
  };
}
