import { NAME_LIMITS, PAGE_LIMITS } from '@pallas/protocol/constants';
import { useState } from 'react';
import type { Device, Group, GroupQuery } from '@pallas/protocol';
import { api } from '../api/client.js';
import { useCan } from '../auth/AuthProvider.js';
import { PresenceBadge } from '../components/Badges.js';
import { ConfirmDialog, Dialog } from '../components/Dialog.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { Field } from '../components/Field.js';
import { useResource } from '../hooks/useResource.js';
import { formatRelative } from '../lib/format.js';

/** The saved query in words: `tags=ring=canary hypervisor=esxi`. */
export function queryText(q: GroupQuery | null): string {
  if (!q) return 'fixed list';
  return Object.entries(q).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(' ');
}

function CreateGroupDialog({ onCreated, onClose }: { onCreated(): void; onClose(): void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'query' | 'static'>('query');
  const [tags, setTags] = useState('');
  const [namePattern, setNamePattern] = useState('');
  const [hypervisor, setHypervisor] = useState('');
  const [agentVersion, setAgentVersion] = useState('');
  const [presence, setPresence] = useState('');
  const [deviceIds, setDeviceIds] = useState('');
  const query = (): GroupQuery => ({
    ...(tags.trim() ? { tags: tags.split(',').map((t) => t.trim()).filter(Boolean) } : {}),
    ...(namePattern.trim() ? { namePattern: namePattern.trim() } : {}),
    ...(hypervisor ? { hypervisor: hypervisor as GroupQuery['hypervisor'] } : {}),
    ...(agentVersion.trim() ? { agentVersion: agentVersion.trim() } : {}),
    ...(presence ? { presence: presence as GroupQuery['presence'] } : {}),
  });
  return (
    <Dialog title="Create a group" submitLabel="Create group" canSubmit={name.trim().length > 0} onClose={onClose}
      onSubmit={async () => {
        const body = kind === 'query' ? { name: name.trim(), query: query() } : { name: name.trim(), deviceIds: deviceIds.split(/[\s,]+/).filter(Boolean) };
        await api.call('createGroup', { body });
        onCreated();
      }}>
      <Field label="Name" name="group-name" value={name} maxLength={NAME_LIMITS.group} onChange={(e) => setName(e.target.value)} autoFocus hint="Letters, digits, dots, dashes and spaces" />
      <label className="field">
        <span>Kind</span>
        <select name="group-kind" value={kind} onChange={(e) => setKind(e.target.value as 'query' | 'static')}>
          <option value="query">Saved query (members follow the devices)</option>
          <option value="static">Fixed list of devices</option>
        </select>
      </label>
      {kind === 'query' ? (
        <>
          <Field label="Tags (all of them)" name="group-tags" value={tags} onChange={(e) => setTags(e.target.value)} hint="Comma-separated, e.g. ring=canary, site=lyon" />
          <Field label="Name pattern" name="group-name-pattern" value={namePattern} onChange={(e) => setNamePattern(e.target.value)} hint="* and ? wildcards, case-insensitive" />
          <div className="field-row">
            <label className="field"><span>Hypervisor</span>
              <select name="group-hypervisor" value={hypervisor} onChange={(e) => setHypervisor(e.target.value)}>
                <option value="">Any</option><option value="sim">sim</option><option value="qemu">qemu</option><option value="esxi">esxi</option>
              </select>
            </label>
            <label className="field"><span>Presence</span>
              <select name="group-presence" value={presence} onChange={(e) => setPresence(e.target.value)}>
                <option value="">Any</option><option value="online">online</option><option value="offline">offline</option>
              </select>
            </label>
          </div>
          <Field label="Agent version" name="group-agent-version" value={agentVersion} onChange={(e) => setAgentVersion(e.target.value)} />
        </>
      ) : (
        <label className="field"><span>Device IDs</span>
          <textarea name="group-devices" rows={4} value={deviceIds} onChange={(e) => setDeviceIds(e.target.value)} />
        </label>
      )}
    </Dialog>
  );
}

function Members({ group }: { group: Group }) {
  const members = useResource((signal) => api.call('listGroupMembers', { params: { id: group.id }, query: { limit: 100 }, signal }), [group.id, group.updatedAt]);
  return (
    <section className="panel" aria-label={`Members of ${group.name}`}>
      <h2>{group.name}: {group.deviceCount} device{group.deviceCount === 1 ? '' : 's'}</h2>
      <ErrorNote error={members.error} onRetry={members.reload} />
      {members.data && (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>Name</th><th>Presence</th><th className="secondary">Agent</th><th className="secondary">Tags</th></tr></thead>
            <tbody>
              {members.data.items.map((d: Device) => (
                <tr key={d.id} data-member={d.name}><td>{d.name}</td><td><PresenceBadge presence={d.presence} /></td><td className="secondary">{d.facts?.agentVersion ?? '-'}</td><td className="secondary">{d.tags.join(', ')}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Device groups: fixed lists and saved queries, with their members now. */
export function GroupsView() {
  const operator = useCan('operator');
  const groups = useResource((signal) => api.call('listGroups', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<Group | null>(null);
  const [deleting, setDeleting] = useState<Group | null>(null);
  return (
    <div className="view">
      <header className="view-head">
        <h1>Groups</h1>
        <div className="spacer" />
        {operator && <button type="button" className="button primary" onClick={() => setCreating(true)}>Create group</button>}
      </header>
      <p className="muted">Named sets of devices to aim tasks and rollouts at: a fixed list, or a saved query that follows the fleet.</p>
      <ErrorNote error={groups.error} onRetry={groups.reload} />
      {groups.data && (groups.data.items.length === 0 ? <p className="empty">No groups yet.</p> : (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>Name</th><th>Devices</th><th>Kind</th><th className="secondary">Query</th><th className="secondary">Created</th><th /></tr></thead>
            <tbody>
              {groups.data.items.map((g) => (
                <tr key={g.id} data-group={g.name}>
                  <td><button type="button" className="link" onClick={() => setShown(g)}>{g.name}</button></td>
                  <td data-testid="group-count">{g.deviceCount}</td>
                  <td>{g.kind === 'query' ? 'query' : 'list'}</td>
                  <td className="secondary mono">{queryText(g.query)}</td>
                  <td className="secondary">{formatRelative(g.createdAt)} by {g.createdBy}</td>
                  <td className="actions">{operator && <button type="button" className="button small danger-text" onClick={() => setDeleting(g)}>Delete</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {shown && <Members group={shown} />}
      {creating && <CreateGroupDialog onClose={() => setCreating(false)} onCreated={groups.reload} />}
      {deleting && (
        <ConfirmDialog title={`Delete group ${deleting.name}?`} confirmLabel="Delete group" onClose={() => setDeleting(null)}
          message={<>The devices stay; only the group goes. Refused while a rollout targets it.</>}
          onConfirm={async () => { await api.call('deleteGroup', { params: { id: deleting.id } }); if (shown?.id === deleting.id) setShown(null); groups.reload(); }} />
      )}
    </div>
  );
}
