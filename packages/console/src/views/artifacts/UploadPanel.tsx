import { useRef, useState, type FormEvent } from 'react';
import type { ArtifactKind, SignedArtifact } from '@pallas/protocol';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Field } from '../../components/Field.js';
import { ARTIFACT_KINDS, NAME_LIMITS } from '@pallas/protocol/constants';
import { formatBytes, formatRate } from '@pallas/protocol/units';
import { api } from '../../api/client.js';

interface UploadProgress {
  sent: number;
  total: number;
  /** Bytes a second over the last few seconds (0 until there is a measurement). */
  rate: number;
}

/** How far back the rate looks: long enough to be steady, short enough to follow changes. */
const RATE_WINDOW_MS = 3000;

/** Turns the client's byte counts into progress with a rate over the last few seconds. */
function rateMeter(onProgress: (p: UploadProgress) => void): (sent: number, total: number) => void {
  const samples: Array<{ at: number; sent: number }> = [];
  return (sent, total) => {
    const now = performance.now();
    samples.push({ at: now, sent });
    while (samples.length > 2 && now - samples[0]!.at > RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const rate = now - first.at > 200 ? ((sent - first.sent) * 1000) / (now - first.at) : 0;
    onProgress({ sent, total, rate });
  };
}

/** The manager's rule for names and versions (protocol `UploadArtifactQuery`). */
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;
const LABEL_HINT = 'Letters, digits and . _ + ~ - (not first), up to 128 characters';

/**
 * `ubuntu-22.04.ova` → name `ubuntu-22.04`, cleaned up to the characters the manager accepts.
 * Not shortened: a name over the limit is shown whole, and the field says the limit.
 */
function nameFromFile(fileName: string): string {
  return fileName.replace(/\.[A-Za-z0-9]+$/, '').replace(/[^A-Za-z0-9._+~-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
}

/**
 * What the file picker offers for each kind (a filter, not a rule: "All files" stays one click
 * away, and the manager checks the content whatever the name, docs/artifacts.md).
 */
const PICKER: Record<ArtifactKind, { accept: string; looksLike: RegExp; describe: string }> = {
  ova: { accept: '.ova', looksLike: /\.ova$/i, describe: 'an OVA (a tar with an OVF descriptor and its disks)' },
  agent: { accept: '.mjs,.js', looksLike: /\.m?js$/i, describe: 'an agent bundle (pallas-agent.mjs from bundle.mjs)' },
  patch: { accept: '.tar', looksLike: /\.tar$/i, describe: 'a patch (a tar whose first file is pallas-patch.json)' },
};

/** Bytes sent, percentage and rate, with an estimate of the time left. */
function ProgressLine({ progress }: { progress: UploadProgress }) {
  const pct = progress.total > 0 ? (progress.sent / progress.total) * 100 : 0;
  const left = progress.rate > 0 ? Math.ceil((progress.total - progress.sent) / progress.rate) : undefined;
  return (
    <div className="upload-progress">
      <div className="progress-track" role="progressbar" aria-label="Upload progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}>
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <span className="task-status-text" data-testid="upload-progress-text">
        {formatBytes(progress.sent)} of {formatBytes(progress.total)} · {Math.floor(pct)} %
        {progress.rate > 0 && <> · {formatRate(progress.rate)}{left !== undefined && left > 0 ? ` · about ${left} s left` : ''}</>}
        {progress.sent >= progress.total && progress.total > 0 && ' · the manager is checking the hash…'}
      </span>
    </div>
  );
}

/**
 * Upload a file as an artifact: choose it, say what it is, watch it go. The file streams from
 * disk (a multi-GB OVA is fine); Cancel aborts and the manager keeps nothing of a cut upload.
 */
export function UploadPanel({ onUploaded, onClose }: { onUploaded(artifact: SignedArtifact): void; onClose(): void }) {
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<ArtifactKind | ''>('');
  const [name, setName] = useState('');
  const [version, setVersion] = useState('1');
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [error, setError] = useState<unknown>(null);
  const upload = useRef<AbortController | null>(null);
  const busy = progress !== null;
  const nameError = name && !LABEL.test(name) ? LABEL_HINT : undefined;
  const versionError = version && !LABEL.test(version) ? LABEL_HINT : undefined;
  const ready = !!kind && !!file && !!name && !!version && !nameError && !versionError && !busy;

  const start = async (e: FormEvent) => {
    e.preventDefault();
    if (!ready || !file || !kind) return;
    setError(null);
    setProgress({ sent: 0, total: file.size, rate: 0 });
    const current = new AbortController();
    upload.current = current;
    try {
      // The File streams from disk (XMLHttpRequest under the client, for its progress events).
      const created = await api.upload({ kind, name, version }, file, { onProgress: rateMeter(setProgress), signal: current.signal });
      onUploaded(created);
    } catch (err) {
      setError(err);
    } finally {
      upload.current = null;
      setProgress(null);
    }
  };

  return (
    <section className="panel" aria-label="Upload an artifact">
      <form onSubmit={(e) => void start(e)} noValidate>
        <h2>Upload an artifact</h2>
        <div className="field-row">
          <label className="field">
            <span>Kind</span>
            <select name="artifact-kind" value={kind} disabled={busy} required onChange={(e) => setKind(e.target.value as ArtifactKind)}>
              <option value="" disabled>Choose what it is…</option>
              {ARTIFACT_KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
            </select>
            {kind && <small className="muted">{PICKER[kind].describe}</small>}
          </label>
          {/* The kind is the operator's to say: never guessed from the file name (a wrong guess fails late, on a device). */}
          <label className="field">
            <span>File</span>
            <input type="file" name="artifact-file" disabled={busy} {...(kind ? { accept: PICKER[kind].accept } : {})} onChange={(e) => {
              const chosen = e.target.files?.[0] ?? null;
              setFile(chosen);
              if (chosen) setName(nameFromFile(chosen.name));
            }} />
            {file && <small className="muted">{formatBytes(file.size)}</small>}
            {file && kind && !PICKER[kind].looksLike.test(file.name) && (
              <small className="field-warning" data-testid="kind-mismatch">{file.name} does not look like {PICKER[kind].describe}; check the kind</small>
            )}
          </label>
        </div>
        <div className="field-row">
          <Field label="Name" name="artifact-name" value={name} disabled={busy} maxLength={NAME_LIMITS.artifact} onChange={(e) => setName(e.target.value)} error={nameError} />
          <Field label="Version" name="artifact-version" value={version} disabled={busy} maxLength={NAME_LIMITS.artifact} onChange={(e) => setVersion(e.target.value)} error={versionError} />
        </div>
        {progress && <ProgressLine progress={progress} />}
        <ErrorNote error={error} />
        <div className="dialog-actions">
          {busy
            ? <button type="button" className="button" onClick={() => upload.current?.abort()}>Cancel upload</button>
            : <button type="button" className="button" onClick={onClose}>Close</button>}
          <button type="submit" className="button primary" disabled={!ready}>{busy ? 'Uploading…' : 'Upload'}</button>
        </div>
      </form>
    </section>
  );
}
