import { useState } from 'react';
import type { Device } from '@pallas/protocol';
import { devicesApi } from '../../api/endpoints.js';
import { navigate } from '../../app/router.js';
import { ConfirmDialog, Dialog } from '../../components/Dialog.js';
import { Field } from '../../components/Field.js';

const TAG = /^[A-Za-z0-9._:/=-]{1,64}$/;

/**
 * An operator's actions on a device. Approving a pending device and rotating or revoking its
 * credential belong here too, once the manager has those APIs (security issue).
 */
export function DeviceActions({ device, onChanged }: { device: Device; onChanged(device: Device): void }) {
  const [open, setOpen] = useState<'rename' | 'tags' | 'decommission' | null>(null);
  const [name, setName] = useState(device.name);
  const [tags, setTags] = useState(device.tags.join(' '));
  const tagList = tags.split(/[\s,]+/).filter(Boolean);
  const badTag = tagList.find((t) => !TAG.test(t));
  return (
    <div className="button-group">
      <button type="button" className="button" onClick={() => { setName(device.name); setOpen('rename'); }}>Rename</button>
      <button type="button" className="button" onClick={() => { setTags(device.tags.join(' ')); setOpen('tags'); }}>Edit tags</button>
      <button type="button" className="button danger-text" onClick={() => setOpen('decommission')}>Decommission</button>
      {open === 'rename' && (
        <Dialog title="Rename device" submitLabel="Rename" canSubmit={name.trim().length > 0 && name.trim() !== device.name} onClose={() => setOpen(null)}
          onSubmit={async () => onChanged(await devicesApi.patch(device.id, { name: name.trim() }))}>
          <Field label="Name" name="device-name" value={name} maxLength={255} onChange={(e) => setName(e.target.value)} autoFocus />
        </Dialog>
      )}
      {open === 'tags' && (
        <Dialog title="Tags" submitLabel="Save tags" canSubmit={!badTag} onClose={() => setOpen(null)}
          onSubmit={async () => onChanged(await devicesApi.patch(device.id, { tags: [...new Set(tagList)] }))}>
          <Field label="Tags, separated by spaces" name="device-tags" value={tags} onChange={(e) => setTags(e.target.value)} autoFocus
            error={badTag ? `"${badTag}": letters, digits and . _ : / = - only, up to 64 characters` : undefined}
            hint="For example site=berlin role:edge. Bulk tasks can target a tag." />
        </Dialog>
      )}
      {open === 'decommission' && (
        <ConfirmDialog title={`Decommission ${device.name}?`} confirmLabel="Decommission" typeToConfirm={device.name} onClose={() => setOpen(null)}
          message={<>The device's credential stops working at once, its agent is told to stop, and its queued tasks are cancelled. Bringing it back needs a new enrollment token on the device.</>}
          onConfirm={async () => {
            await devicesApi.decommission(device.id);
            navigate('/devices');
          }} />
      )}
    </div>
  );
}
