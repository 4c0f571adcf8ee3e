import { useEffect, useState } from 'react';
import type { PageOf, Task, TaskQuery, TaskState } from '@pallas/protocol';
import { useDebounced } from '../../hooks/timing.js';
import { api } from '../../api/client.js';
import { setQuery, useLocation } from '../../app/router.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Pager } from '../../components/Pager.js';
import { useResource } from '../../hooks/useResource.js';
import { TASK_STATE_LABEL } from '../../lib/task-text.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { TaskTable, upsertTask } from './TaskTable.js';

const PAGE_SIZE = 50;
const STATES = Object.keys(TASK_STATE_LABEL) as TaskState[];
const KINDS = ['vm.create', 'vm.power', 'vm.update', 'vm.delete', 'vm.deploy', 'device.patch', 'agent.update'];

function queryFrom(search: URLSearchParams): TaskQuery {
  const state = search.get('state') as TaskState | null;
  return {
    limit: PAGE_SIZE,
    offset: Math.max(0, Number(search.get('offset')) || 0),
    ...(state && STATES.includes(state) ? { state } : {}),
    ...(search.get('kind') ? { kind: search.get('kind')! } : {}),
    ...(search.get('deviceId') ? { deviceId: search.get('deviceId')! } : {}),
    ...(search.get('device') ? { device: search.get('device')! } : {}),
  };
}

function matches(task: Task, q: TaskQuery): boolean {
  return (!q.state || task.state === q.state) && (!q.kind || task.kind === q.kind) && (!q.deviceId || task.deviceId === q.deviceId)
    && (!q.device || task.deviceId === q.device || task.deviceName === q.device);
}

/** Every task, newest first, with filters; progress moves live. */
export function TasksView() {
  const { query: search } = useLocation();
  const [device, setDevice] = useState(search.get('device') ?? '');
  const settled = useDebounced(device.trim(), 300);
  useEffect(() => {
    if (settled !== (search.get('device') ?? '')) setQuery({ device: settled, offset: undefined });
  }, [settled]);
  const query = queryFrom(search);
  const page = useResource<PageOf<Task>>((signal) => api.call('listTasks', { query, signal }), [JSON.stringify(query)]);

  useLiveEvents((m) => {
    if (m.type === 'reset') return page.reload();
    if (m.type !== 'task') return;
    page.set((cur) => {
      if (!cur) return cur;
      const present = cur.items.some((t) => t.id === m.task.id);
      // A task that no longer matches the state filter stays until the next load, so rows
      // do not jump away under the pointer; new matching tasks appear on the first page.
      const isNew = !present && query.offset === 0 && matches(m.task, query);
      const items = upsertTask(cur.items, m.task, isNew, PAGE_SIZE);
      return { ...cur, items, total: cur.total + (isNew ? 1 : 0) };
    });
  });

  return (
    <div className="view">
      <header className="view-head">
        <h1>Tasks</h1>
        {page.data && <span className="muted">{page.data.total.toLocaleString('en')} {query.state || query.kind || query.deviceId || query.device ? 'matching' : 'in all'}</span>}
      </header>
      <div className="toolbar">
        <label className="filter"><span>State</span>
          <select name="task-state" value={query.state ?? ''} onChange={(e) => setQuery({ state: e.target.value, offset: undefined })}>
            <option value="">Any state</option>
            {STATES.map((s) => <option key={s} value={s}>{TASK_STATE_LABEL[s]}</option>)}
          </select>
        </label>
        <label className="filter"><span>Operation</span>
          <select name="task-kind" value={query.kind ?? ''} onChange={(e) => setQuery({ kind: e.target.value, offset: undefined })}>
            <option value="">Any operation</option>
            {KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
        </label>
        <label className="filter"><span>Device</span>
          <input name="task-device" placeholder="exact name or id" value={device} onChange={(e) => setDevice(e.target.value)} />
        </label>
        {query.deviceId && (
          <button type="button" className="button small" onClick={() => setQuery({ deviceId: undefined, offset: undefined })}>
            Device {query.deviceId.slice(0, 8)}… ✕
          </button>
        )}
      </div>
      <ErrorNote error={page.error} onRetry={page.reload} />
      {page.data && <TaskTable tasks={page.data.items} showDevice />}
      {page.data && <Pager offset={page.data.offset} limit={page.data.limit} total={page.data.total} onChange={(offset) => setQuery({ offset: offset || undefined })} />}
      {!page.data && page.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
