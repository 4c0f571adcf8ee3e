import { messageOf } from '../api/client.js';

/** An API or other error as a sentence, in the place where it happened. */
export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error-note" role="alert">
      <span>{messageOf(error)}</span>
      {onRetry && <button type="button" className="button small" onClick={onRetry}>Retry</button>}
    </div>
  );
}
