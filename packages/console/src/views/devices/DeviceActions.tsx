import { useState } from 'react';
import type { Device } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { ConfirmDialog, Dialog } from '../../components/Dialog.js';
import { Field } from '../../components/Field.js';
import { DecommissionDialog } from './DecommissionDialog.js';
import { NAME_LIMITS } from '@pallas/protocol/constants';

const TAG = /^[A-Za-z0-9._:/=-]{1,64}$/;
const DEVICE_NAME_MAX = NAME_LIMITS.device;

type Open = 'rename' | 'tags' | 'decommission' | 'approve' | 'block' | 'unblock' | 'rotate' | null;

/**
 * An operator's actions on a device: rename, tags, and the security actions of
 * docs/security.md (approve a pending device, block and unblock, rotate its credential,
 * decommission). Each security action asks first, naming the device.
 */
export function DeviceActions({ device, onChanged }: { device: Device; onChanged(device: Device): void }) {
  const [open, setOpen] = useState<Open>(null);
  const [name, setName] = useState(device.name);
  const [tags, setTags] = useState(device.tags.join(' '));
  const tagList = tags.split(/[\s,]+/).filter(Boolean);
  const badTag = tagList.find((t) => !TAG.test(t));
  return (
    <div className="button-group">
      <button type="button" className="button" onClick={() => { setName(device.name); setOpen('rename'); }}>Rename</button>
      <button type="button" className="button" onClick={() => { setTags(device.tags.join(' ')); setOpen('tags'); }}>Edit tags</button>
      {device.status === 'pending' && <button type="button" className="button primary" onClick={() => setOpen('approve')}>Approve</button>}
      {device.status === 'active' && <button type="button" className="button" onClick={() => setOpen('rotate')}>Rotate credential</button>}
      {device.status === 'blocked'
        ? <button type="button" className="button" onClick={() => setOpen('unblock')}>Unblock</button>
        : <button type="button" className="button danger-text" onClick={() => setOpen('block')}>Block</button>}
      <button type="button" className="button danger-text" onClick={() => setOpen('decommission')}>Decommission</button>
      {open === 'approve' && (
        <ConfirmDialog title={`Approve ${device.name}?`} confirmLabel="Approve device" danger={false} onClose={() => setOpen(null)}
          message={<>The device <strong>{device.name}</strong> may connect from now on and take tasks. Its agent retries by itself and comes online within about a minute.</>}
          onConfirm={async () => onChanged(await api.call('approveDevice', { params: { id: device.id } }))} />
      )}
      {open === 'block' && (
        <ConfirmDialog title={`Block ${device.name}?`} confirmLabel="Block device" onClose={() => setOpen(null)}
          message={<>The connection of <strong>{device.name}</strong> is closed at once and its credential is refused until someone unblocks it. Its VMs keep running; tasks for it wait in its queue.</>}
          onConfirm={async () => onChanged(await api.call('blockDevice', { params: { id: device.id } }))} />
      )}
      {open === 'unblock' && (
        <ConfirmDialog title={`Unblock ${device.name}?`} confirmLabel="Unblock device" danger={false} onClose={() => setOpen(null)}
          message={<>The device <strong>{device.name}</strong> may connect again; its agent comes back by itself within about a minute.</>}
          onConfirm={async () => onChanged(await api.call('unblockDevice', { params: { id: device.id } }))} />
      )}
      {open === 'rotate' && (
        <ConfirmDialog title={`Rotate the credential of ${device.name}?`} confirmLabel="Rotate credential" danger={false} onClose={() => setOpen(null)}
          message={<>The manager sends <strong>{device.name}</strong> a new secret. The old one keeps working until the device connects with the new one; if the device is offline, that happens when it reconnects.</>}
          onConfirm={async () => onChanged(await api.call('rotateDeviceCredential', { params: { id: device.id } }))} />
      )}
      {open === 'rename' && (
        <Dialog title="Rename device" submitLabel="Rename" canSubmit={name.trim().length > 0 && name.trim().length <= DEVICE_NAME_MAX && name.trim() !== device.name} onClose={() => setOpen(null)}
          onSubmit={async () => onChanged(await api.call('updateDevice', { params: { id: device.id }, body: { name: name.trim() } }))}>
          <Field label="Name" name="device-name" value={name} maxLength={DEVICE_NAME_MAX} onChange={(e) => setName(e.target.value)} autoFocus />
        </Dialog>
      )}
      {open === 'tags' && (
        <Dialog title="Tags" submitLabel="Save tags" canSubmit={!badTag} onClose={() => setOpen(null)}
          onSubmit={async () => onChanged(await api.call('updateDevice', { params: { id: device.id }, body: { tags: [...new Set(tagList)] } }))}>
          <Field label="Tags, separated by spaces" name="device-tags" value={tags} onChange={(e) => setTags(e.target.value)} autoFocus
            error={badTag ? `"${badTag}": letters, digits and . _ : / = - only, up to 64 characters` : undefined}
            hint="For example site=berlin role:edge. Bulk tasks can target a tag." />
        </Dialog>
      )}
      {open === 'decommission' && <DecommissionDialog device={device} onClose={() => setOpen(null)} />}
    </div>
  );
}
