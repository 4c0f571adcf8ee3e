import { useState } from 'react';
import type { Artifact, ArtifactKind, ArtifactQuery } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { setQuery, useLocation } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { CopyButton } from '../../components/CopyButton.js';
import { ConfirmDialog } from '../../components/Dialog.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Pager } from '../../components/Pager.js';
import { useResource } from '../../hooks/useResource.js';
import { ARTIFACT_KINDS } from '@pallas/protocol/constants';
import { ARTIFACT_KIND_TEXT } from '../../lib/artifact-text.js';
import { formatBytes } from '@pallas/protocol/units';
import { formatCount, formatDateTime, formatRelative } from '../../lib/format.js';
import { UploadPanel } from './UploadPanel.js';

const PAGE_SIZE = 50;

function queryFrom(search: URLSearchParams): ArtifactQuery {
  const kind = search.get('kind');
  return {
    limit: PAGE_SIZE,
    offset: Math.max(0, Number(search.get('offset')) || 0),
    ...(ARTIFACT_KINDS.includes(kind as ArtifactKind) ? { kind: kind as ArtifactKind } : {}),
  };
}

/**
 * Artifacts: OVAs to deploy, device patches, agent versions. Everyone sees the list (size and
 * SHA-256, which agents check every download against); operators upload and delete.
 */
export function ArtifactsView() {
  const canOperate = useCan('operator');
  const { query: search } = useLocation();
  const query = queryFrom(search);
  const list = useResource((signal) => api.call('listArtifacts', { query, signal }), [JSON.stringify(query)]);
  const [uploading, setUploading] = useState(false);
  const [uploaded, setUploaded] = useState<Artifact | null>(null);
  const [deleting, setDeleting] = useState<Artifact | null>(null);
  const data = list.data;
  return (
    <div className="view">
      <header className="view-head">
        <h1>Artifacts</h1>
        {data && <span className="muted">{formatCount(data.total)} {data.total === 1 ? 'artifact' : 'artifacts'}{query.kind ? ` of kind ${query.kind}` : ''}</span>}
        <div className="spacer" />
        {canOperate && !uploading && <button type="button" className="button primary" onClick={() => { setUploaded(null); setUploading(true); }}>Upload artifact</button>}
      </header>
      {uploading && (
        <UploadPanel onClose={() => setUploading(false)} onUploaded={(a) => { setUploaded(a); setUploading(false); list.reload(); }} />
      )}
      {uploaded && (
        <div className="notice good" role="status" data-testid="upload-done">
          Uploaded <strong>{uploaded.name} {uploaded.version}</strong> ({formatBytes(uploaded.size)}), SHA-256 <span className="mono">{uploaded.sha256}</span>
        </div>
      )}
      <div className="toolbar">
        <label className="filter"><span>Kind</span>
          <select name="artifact-kind-filter" value={query.kind ?? ''} onChange={(e) => setQuery({ kind: e.target.value, offset: undefined })}>
            <option value="">All kinds</option>
            {ARTIFACT_KINDS.map((k) => <option key={k} value={k}>{ARTIFACT_KIND_TEXT[k]}</option>)}
          </select>
        </label>
      </div>
      <ErrorNote error={list.error} onRetry={list.reload} />
      {data && (data.items.length === 0 ? <p className="empty">No artifacts{query.kind ? ' of this kind' : ''} yet.{canOperate ? ' Upload one with the button above.' : ''}</p> : (
        <div className="table-wrap">
          <table className="table stack artifact-table">
            <thead>
              <tr><th>Name</th><th>Kind</th><th className="num">Size</th><th className="secondary">SHA-256</th><th className="secondary">Uploaded</th>{canOperate && <th />}</tr>
            </thead>
            <tbody>
              {data.items.map((a) => (
                <tr key={a.id} data-artifact={`${a.name} ${a.version}`} data-artifact-id={a.id}>
                  <td>
                    <strong>{a.name}</strong> <span className="muted">{a.version}</span>
                    <small className="muted mobile-only">{formatRelative(a.createdAt)} by {a.createdBy} · <span className="mono">{a.sha256.slice(0, 12)}…</span></small>
                  </td>
                  <td><span className="badge">{a.kind}</span></td>
                  <td className="num">{formatBytes(a.size)}</td>
                  <td className="secondary">
                    <span className="hash">
                      <span className="mono" title={a.sha256} data-sha256={a.sha256}>{a.sha256.slice(0, 12)}…</span>
                      <CopyButton text={a.sha256} />
                    </span>
                  </td>
                  <td className="secondary" title={formatDateTime(a.createdAt)}>{formatRelative(a.createdAt)} by {a.createdBy}</td>
                  {canOperate && (
                    <td className="actions">
                      <button type="button" className="button small danger-text" onClick={() => setDeleting(a)}>Delete</button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {data && data.total > PAGE_SIZE && <Pager offset={data.offset} limit={data.limit} total={data.total} onChange={(offset) => setQuery({ offset: offset || undefined })} />}
      {!data && list.loading && <p className="muted">Loading…</p>}
      {deleting && (
        <ConfirmDialog title={`Delete ${deleting.name} ${deleting.version}?`} confirmLabel="Delete artifact" onClose={() => setDeleting(null)}
          message={<>The file is deleted from the manager. Devices that already have it keep their copy; tasks can no longer use it. The manager refuses while an unfinished task uses it.</>}
          onConfirm={async () => { await api.call('deleteArtifact', { params: { id: deleting.id } }); setUploaded(null); list.reload(); }} />
      )}
    </div>
  );
}
