import { NAME_LIMITS, PAGE_LIMITS, ROLLOUT_DEFAULTS } from '@pallas/protocol/constants';
import { useEffect, useState } from 'react';
import type { CreateRollout, Rollout, RolloutPlan, TaskOperation } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { Link, navigate, useLocation } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { Dialog } from '../../components/Dialog.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Field } from '../../components/Field.js';
import { useResource } from '../../hooks/useResource.js';
import { formatRelative } from '../../lib/format.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { RolloutBar, RolloutStateBadge } from './RolloutParts.js';

type OpKind = 'agent.update' | 'device.patch' | 'vm.deploy' | 'vm.power';

/** `1, 10%, 50%` → wave sizes; empty → the default ramp. */
function wavesOf(text: string): CreateRollout['waves'] | undefined {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) return undefined;
  return { sizes: parts.map((p) => (p.endsWith('%') ? p : Number(p))) };
}

/** The rollout wizard: target, operation, waves and thresholds, with the devices each wave will hit. */
function CreateRolloutDialog({ initialGroup, onCreated, onClose }: { initialGroup?: string; onCreated(r: Rollout): void; onClose(): void }) {
  const groups = useResource((signal) => api.call('listGroups', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const artifacts = useResource((signal) => api.call('listArtifacts', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const [name, setName] = useState('');
  const [targetKind, setTargetKind] = useState<'group' | 'tag'>('group');
  const [groupId, setGroupId] = useState(initialGroup ?? '');
  const [tag, setTag] = useState('');
  const [opKind, setOpKind] = useState<OpKind>('agent.update');
  const [artifactId, setArtifactId] = useState('');
  const [vmId, setVmId] = useState('');
  const [powerAction, setPowerAction] = useState<'on' | 'off' | 'reset' | 'shutdown'>('on');
  const [waves, setWaves] = useState('');
  const [success, setSuccess] = useState(String(ROLLOUT_DEFAULTS.successShare * 100));
  const [errorPct, setErrorPct] = useState(String(ROLLOUT_DEFAULTS.errorShare * 100));
  const [onError, setOnError] = useState<'pause' | 'abort'>('pause');
  const [maxInProgress, setMaxInProgress] = useState(String(ROLLOUT_DEFAULTS.maxInProgress));
  const [plan, setPlan] = useState<RolloutPlan | null>(null);
  const [planError, setPlanError] = useState<unknown>(null);

  const target = targetKind === 'group' ? (groupId ? { groupId } : null) : (tag.trim() ? { tag: tag.trim() } : null);
  const neededKind = opKind === 'agent.update' ? 'agent' : opKind === 'device.patch' ? 'patch' : 'ova';
  // The wave preview follows the target and the waves as they are typed.
  useEffect(() => {
    if (!target) return setPlan(null);
    const abort = new AbortController();
    const w = wavesOf(waves);
    api.call('planRollout', { body: { ...target, ...(w ? { waves: w } : {}) }, signal: abort.signal }).then(
      (p) => { setPlan(p); setPlanError(null); },
      (err: unknown) => { if (!abort.signal.aborted) { setPlan(null); setPlanError(err); } },
    );
    return () => abort.abort();
  }, [targetKind, groupId, tag, waves]);

  const operation = (): TaskOperation => {
    if (opKind === 'vm.power') return { kind: 'vm.power', vmId, action: powerAction };
    if (opKind === 'vm.deploy') return { kind: 'vm.deploy', source: { kind: 'artifact', artifactId } };
    return { kind: opKind, artifactId };
  };
  const ready = name.trim() && target && (opKind === 'vm.power' ? vmId.trim() : artifactId);
  return (
    <Dialog title="Start a rollout" submitLabel="Start rollout" canSubmit={Boolean(ready)} onClose={onClose}
      onSubmit={async () => {
        const w = wavesOf(waves);
        const r = await api.call('createRollout', {
          body: {
            name: name.trim(), operation: operation(), ...target!, ...(w ? { waves: w } : {}),
            successShare: Number(success) / 100, maxInProgress: Number(maxInProgress),
            errorThreshold: { share: Number(errorPct) / 100, action: onError },
          },
        });
        onCreated(r);
      }}>
      <Field label="Name" name="rollout-name" value={name} maxLength={NAME_LIMITS.rollout} onChange={(e) => setName(e.target.value)} autoFocus />
      <div className="field-row">
        <label className="field"><span>Target</span>
          <select name="rollout-target-kind" value={targetKind} onChange={(e) => setTargetKind(e.target.value as 'group' | 'tag')}>
            <option value="group">A group</option><option value="tag">A tag</option>
          </select>
        </label>
        {targetKind === 'group' ? (
          <label className="field"><span>Group</span>
            <select name="rollout-group" value={groupId} onChange={(e) => setGroupId(e.target.value)}>
              <option value="">Choose…</option>
              {groups.data?.items.map((g) => <option key={g.id} value={g.id}>{g.name} ({g.deviceCount})</option>)}
            </select>
          </label>
        ) : <Field label="Tag" name="rollout-tag" value={tag} onChange={(e) => setTag(e.target.value)} />}
      </div>
      <div className="field-row">
        <label className="field"><span>Operation</span>
          <select name="rollout-operation" value={opKind} onChange={(e) => setOpKind(e.target.value as OpKind)}>
            <option value="agent.update">Update the agent</option>
            <option value="device.patch">Patch the host</option>
            <option value="vm.deploy">Deploy a VM from an OVA</option>
            <option value="vm.power">Power a VM</option>
          </select>
        </label>
        {opKind === 'vm.power' ? (
          <>
            <Field label="VM id" name="rollout-vm" value={vmId} onChange={(e) => setVmId(e.target.value)} />
            <label className="field"><span>Action</span>
              <select name="rollout-power" value={powerAction} onChange={(e) => setPowerAction(e.target.value as 'on')}>
                {['on', 'off', 'reset', 'shutdown'].map((a) => <option key={a} value={a}>{a}</option>)}
              </select>
            </label>
          </>
        ) : (
          <label className="field"><span>Artifact ({neededKind})</span>
            <select name="rollout-artifact" value={artifactId} onChange={(e) => setArtifactId(e.target.value)}>
              <option value="">Choose…</option>
              {artifacts.data?.items.filter((a) => a.kind === neededKind).map((a) => <option key={a.id} value={a.id}>{a.name} {a.version}</option>)}
            </select>
          </label>
        )}
      </div>
      <Field label="Waves" name="rollout-waves" value={waves} onChange={(e) => setWaves(e.target.value)} hint="Counts or percentages, e.g. 1, 10%, 50% (empty: 1, 2, 4, 8 … up to 100)" />
      <p className="muted" data-testid="rollout-plan">
        {plan ? `${plan.total} device${plan.total === 1 ? '' : 's'} in ${plan.waves.length} wave${plan.waves.length === 1 ? '' : 's'}: ${plan.waves.join(', ')}` : target ? '…' : 'Choose a target to see the waves.'}
      </p>
      <ErrorNote error={planError} />
      <div className="field-row">
        <Field label="Success gate %" name="rollout-success" type="number" min={0} max={100} value={success} onChange={(e) => setSuccess(e.target.value)} />
        <Field label="Error threshold %" name="rollout-errors" type="number" min={1} max={100} value={errorPct} onChange={(e) => setErrorPct(e.target.value)} />
        <label className="field"><span>Then</span>
          <select name="rollout-on-error" value={onError} onChange={(e) => setOnError(e.target.value as 'pause' | 'abort')}>
            <option value="pause">pause</option><option value="abort">abort</option>
          </select>
        </label>
        <Field label="At once" name="rollout-max" type="number" min={1} value={maxInProgress} onChange={(e) => setMaxInProgress(e.target.value)} />
      </div>
    </Dialog>
  );
}

/** Rollouts, newest first, with progress that moves live. */
export function RolloutsView() {
  const operator = useCan('operator');
  const { query } = useLocation();
  const fromSelection = query.get('group') ?? undefined;
  const list = useResource((signal) => api.call('listRollouts', { query: { limit: 100 }, signal }), []);
  const [creating, setCreating] = useState(Boolean(fromSelection && operator));
  useLiveEvents((m) => {
    if (m.type === 'reset') return list.reload();
    if (m.type !== 'rollout') return;
    list.set((cur) => {
      if (!cur) return cur;
      const present = cur.items.some((r) => r.id === m.rollout.id);
      return present ? { ...cur, items: cur.items.map((r) => (r.id === m.rollout.id ? m.rollout : r)) } : { ...cur, items: [m.rollout, ...cur.items], total: cur.total + 1 };
    });
  });
  return (
    <div className="view">
      <header className="view-head">
        <h1>Rollouts</h1>
        <div className="spacer" />
        {operator && <button type="button" className="button primary" onClick={() => setCreating(true)}>Start rollout</button>}
      </header>
      <ErrorNote error={list.error} onRetry={list.reload} />
      {list.data && (list.data.items.length === 0 ? <p className="empty">No rollouts yet.</p> : (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>Name</th><th>State</th><th>Operation</th><th>Progress</th><th className="secondary">Wave</th><th className="secondary">Started</th></tr></thead>
            <tbody>
              {list.data.items.map((r) => (
                <tr key={r.id} data-rollout={r.name} data-rollout-state={r.state}>
                  <td><Link className="row-link" to={`/rollouts/${r.id}`}>{r.name}</Link></td>
                  <td><RolloutStateBadge rollout={r} /></td>
                  <td className="mono">{r.operation.kind}</td>
                  <td><RolloutBar counts={r.counts} /></td>
                  <td className="secondary">{r.currentWave}/{r.waves.length}</td>
                  <td className="secondary">{formatRelative(r.createdAt)} by {r.createdBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {creating && <CreateRolloutDialog {...(fromSelection ? { initialGroup: fromSelection } : {})} onClose={() => setCreating(false)} onCreated={(r) => navigate(`/rollouts/${r.id}`)} />}
    </div>
  );
}
