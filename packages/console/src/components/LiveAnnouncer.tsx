import { useEffect, useRef, useState } from 'react';
import { api } from '../api/client.js';
import { useAuth } from '../auth/AuthProvider.js';
import { summarize, taskAnnouncement, type Announcement, type TaskMemory } from '../lib/announce.js';
import { useLiveEvents } from '../live/LiveProvider.js';

/** How often the region may change: a screen reader needs time to finish a sentence. */
const EVERY_MS = 1500;
const REMEMBERED_TASKS = 500;

/**
 * A polite live region (role=status) for the whole console: it announces the progress of the
 * logged-in user's own tasks (state changes and each quarter of progress) and devices going
 * offline, batched every 1.5 s (see lib/announce.ts). It is visually hidden; sighted users see
 * the same changes in the views.
 */
export function LiveAnnouncer() {
  const { user } = useAuth();
  const [text, setText] = useState('');
  const pending = useRef<Announcement[]>([]);
  const said = useRef(new Map<string, TaskMemory>());

  useLiveEvents((m) => {
    if (m.type === 'task' && m.task.createdBy === user?.username) {
      const next = taskAnnouncement(m.task, said.current.get(m.task.id));
      if (!next) return;
      said.current.delete(m.task.id);
      said.current.set(m.task.id, next.memory);
      if (said.current.size > REMEMBERED_TASKS) said.current.delete(said.current.keys().next().value!);
      pending.current.push({ kind: 'task', task: m.task, text: next.text });
    } else if (m.type === 'device' && m.device.presence === 'offline' && !m.device.removed) {
      pending.current.push({ kind: 'offline', deviceId: m.device.id });
    }
  });

  useEffect(() => {
    let stopped = false;
    const timer = setInterval(() => {
      const items = pending.current.splice(0);
      if (items.length === 0) return;
      // Names of a few offline devices are looked up; a burst is only counted.
      const offline = items.filter((i) => i.kind === 'offline');
      const named = offline.length <= 3
        ? Promise.all(offline.map(async (o) => {
          try {
            o.name = (await api.call('getDevice', { params: { id: o.deviceId } })).name;
          } catch {
            /* decommissioned meanwhile: its id is said */
          }
        }))
        : Promise.resolve();
      void named.then(() => { if (!stopped) setText(summarize(items)); });
    }, EVERY_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  return <div className="visually-hidden" role="status" aria-live="polite" aria-atomic="true" data-testid="live-announcer">{text}</div>;
}
