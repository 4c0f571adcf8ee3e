import { useState } from 'react';
import { api } from '../../api/client.js';
import { navigate } from '../../app/router.js';
import { Dialog } from '../../components/Dialog.js';
import { Field } from '../../components/Field.js';

type Action = 'group' | 'power' | 'rollout';

/**
 * Ad-hoc actions on the devices selected in the list: keep them as a group, power a VM on all of
 * them at once (one bulk task), or roll an operation out to them in waves (the group first).
 */
export function SelectionActions({ ids, onClear }: { ids: string[]; onClear(): void }) {
  const [action, setAction] = useState<Action | null>(null);
  const [name, setName] = useState('');
  const [vmId, setVmId] = useState('');
  const [power, setPower] = useState<'on' | 'off' | 'reset' | 'shutdown'>('on');
  const [notice, setNotice] = useState('');
  const close = () => setAction(null);
  return (
    <div className="selection-bar" role="region" aria-label="Selected devices">
      <strong data-testid="selected-count">{ids.length} selected</strong>
      <button type="button" className="button small" onClick={() => setAction('group')}>Save as group</button>
      <button type="button" className="button small" onClick={() => setAction('power')}>Power a VM</button>
      <button type="button" className="button small" onClick={() => setAction('rollout')}>Roll out…</button>
      <button type="button" className="button small" onClick={onClear}>Clear</button>
      {notice && <span className="muted" data-testid="selection-notice">{notice}</span>}
      {(action === 'group' || action === 'rollout') && (
        <Dialog title={action === 'group' ? 'Save the selection as a group' : 'Roll out to the selection'} submitLabel={action === 'group' ? 'Save group' : 'Save group and start'} canSubmit={name.trim().length > 0} onClose={close}
          onSubmit={async () => {
            const g = await api.call('createGroup', { body: { name: name.trim(), deviceIds: ids } });
            if (action === 'rollout') navigate(`/rollouts?group=${encodeURIComponent(g.id)}`);
            else setNotice(`Group ${g.name} saved with ${g.deviceCount} devices.`);
          }}>
          {action === 'rollout' && <p>A rollout aims at a group: the selection is saved as one, then the rollout wizard opens with it.</p>}
          <Field label="Group name" name="selection-group-name" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
        </Dialog>
      )}
      {action === 'power' && (
        <Dialog title={`Power a VM on ${ids.length} devices`} submitLabel="Queue tasks" canSubmit={vmId.trim().length > 0} onClose={close}
          onSubmit={async () => {
            const res = await api.call('createBulkTask', { body: { deviceIds: ids, operation: { kind: 'vm.power', vmId: vmId.trim(), action: power } } });
            setNotice(`${res.count} tasks queued (see Tasks).`);
          }}>
          <div className="field-row">
            <Field label="VM id" name="selection-vm" value={vmId} onChange={(e) => setVmId(e.target.value)} autoFocus />
            <label className="field"><span>Action</span>
              <select name="selection-power" value={power} onChange={(e) => setPower(e.target.value as 'on')}>
                {['on', 'off', 'reset', 'shutdown'].map((a) => <option key={a} value={a}>{a}</option>)}
              </select>
            </label>
          </div>
        </Dialog>
      )}
    </div>
  );
}
