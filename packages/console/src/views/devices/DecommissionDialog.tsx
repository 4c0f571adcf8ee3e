import type { Device, Task } from '@pallas/protocol';
import { ACTIVE_TASK_STATES } from '@pallas/protocol/constants';
import { api } from '../../api/client.js';
import { Link, navigate } from '../../app/router.js';
import { ConfirmDialog } from '../../components/Dialog.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { useResource } from '../../hooks/useResource.js';
import { describeOperation } from '../../lib/task-text.js';

const SHOWN = 10;

/**
 * Decommission, asked first by name (typed) and with what it does: the device's running and
 * queued tasks are listed, since they end as cancelled (the manager's cancelAllForDevice), and
 * its VMs are named, since the manager forgets them while they keep running on the device.
 */
export function DecommissionDialog({ device, onClose }: { device: Device; onClose(): void }) {
  // One page per unfinished state: the newest 50 tasks of a busy device may all be finished.
  const active = useResource(async (signal) => {
    const pages = await Promise.all(ACTIVE_TASK_STATES.map((state) => api.call('listTasks', { query: { deviceId: device.id, state, limit: SHOWN }, signal })));
    return { tasks: pages.flatMap((p) => p.items).sort((a, b) => (a.id < b.id ? 1 : -1)), total: pages.reduce((n, p) => n + p.total, 0) };
  }, [device.id]);
  const vms = device.vms;
  return (
    <ConfirmDialog title={`Decommission ${device.name}?`} confirmLabel="Decommission" typeToConfirm={device.name} onClose={onClose}
      message={<>
        The device's credential stops working at once, its agent is told to stop, and bringing it back needs a new enrollment token on the device.
        <span className="block decommission-part" data-testid="decommission-tasks">
          <ErrorNote error={active.error} onRetry={active.reload} />
          {active.loading && !active.data && <span className="muted">Looking for its unfinished tasks…</span>}
          {active.data && (active.data.total === 0 ? 'It has no running or queued tasks.' : (
            <>
              {active.data.total === 1 ? 'Its one unfinished task is cancelled:' : `Its ${active.data.total} unfinished tasks are cancelled:`}
              <ul className="compact-list">
                {active.data.tasks.slice(0, SHOWN).map((t: Task) => (
                  <li key={t.id} data-task-id={t.id}>
                    <Link to={`/tasks/${t.id}`} onClick={onClose}>{describeOperation(t.operation, t.vm?.name)}</Link> <span className="muted">({t.state})</span>
                  </li>
                ))}
                {active.data.total > SHOWN && <li><Link to={`/tasks?deviceId=${device.id}`} onClick={onClose}>and {active.data.total - SHOWN} more</Link></li>}
              </ul>
            </>
          ))}
        </span>
        <span className="block decommission-part" data-testid="decommission-vms">
          {vms.length === 0 ? 'It reported no virtual machines.' : (
            <>
              {vms.length === 1 ? 'Its VM, ' : `Its ${vms.length} VMs, `}
              {vms.slice(0, SHOWN).map((v) => `${v.name} (${v.powerState})`).join(', ')}{vms.length > SHOWN ? ', …' : ''}, {vms.length === 1 ? 'is' : 'are'} not
              touched: {vms.length === 1 ? 'it keeps' : 'they keep'} running on the device as {vms.length === 1 ? 'it is' : 'they are'}, but the manager no longer lists or manages {vms.length === 1 ? 'it' : 'them'}.
            </>
          )}
        </span>
      </>}
      onConfirm={async () => {
        await api.call('decommissionDevice', { params: { id: device.id } });
        navigate('/devices');
      }} />
  );
}
