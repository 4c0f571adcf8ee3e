import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ErrorNote } from './ErrorNote.js';

/**
 * The console's one modal dialog, on the native <dialog> element: `showModal()` makes the rest
 * of the page inert (focus stays inside), Escape cancels (the `cancel` event closes it through
 * `onClose`), and it is labelled by its title and described by its body. Focus starts on the
 * first control (Cancel in a confirmation: Enter on a slip does nothing harmful) and returns
 * to the button that opened it. `onSubmit` runs the action; its error is shown in the dialog,
 * which stays open.
 */
export function Dialog({ title, children, submitLabel, danger, canSubmit = true, onSubmit, onClose }: {
  title: string;
  children: ReactNode;
  submitLabel: string;
  danger?: boolean;
  canSubmit?: boolean;
  onSubmit(): Promise<void>;
  onClose(): void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      dialog?.close();
      if (opener?.isConnected) opener.focus();
    };
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSubmit();
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="dialog" onCancel={(e) => { e.preventDefault(); onClose(); }} aria-labelledby={`${id}-title`} aria-describedby={`${id}-body`}>
      <form onSubmit={submit} noValidate>
        <h2 id={`${id}-title`}>{title}</h2>
        <div className="dialog-body" id={`${id}-body`}>{children}</div>
        <ErrorNote error={error} />
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose}>Cancel</button>
          <button type="submit" className={`button ${danger ? 'danger' : 'primary'}`} disabled={busy || !canSubmit}>
            {busy ? 'Working…' : submitLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/**
 * A confirmation for something that cannot be undone. With `typeToConfirm`, the button stays
 * disabled until that exact text (the device's name) is typed, so a slip cannot do it.
 */
export function ConfirmDialog({ title, message, confirmLabel, typeToConfirm, danger = true, onConfirm, onClose }: {
  title: string;
  /** Off for confirmations of something that is not destructive (approve, unblock). */
  danger?: boolean;
  message: ReactNode;
  confirmLabel: string;
  typeToConfirm?: string;
  onConfirm(): Promise<void>;
  onClose(): void;
}) {
  const [typed, setTyped] = useState('');
  return (
    <Dialog title={title} submitLabel={confirmLabel} danger={danger} canSubmit={typeToConfirm === undefined || typed === typeToConfirm} onSubmit={onConfirm} onClose={onClose}>
      <div className="confirm-message">{message}</div>
      {typeToConfirm !== undefined && (
        <label className="field">
          <span>Type <strong className="mono">{typeToConfirm}</strong> to confirm</span>
          <input value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus autoComplete="off" spellCheck={false} name="confirm" />
        </label>
      )}
    </Dialog>
  );
}
