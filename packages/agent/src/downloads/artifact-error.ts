/**
 * Why an artifact could not be had. The task runner fails the task with `code` and `message`
 * as they are, so the message names the artifact and what differed.
 * - `artifact_untrusted`: the agent has no pinned signing key (enrolled before artifacts).
 * - `artifact_invalid`: the signature, key, size or SHA-256 is not what the manifest says, or the
 *   server sent more bytes than it; the partial file is deleted.
 * - `artifact_forbidden`: the manager refused the URL (expired, not for this device).
 * - `artifact_not_found`: the artifact is gone from the manager, or no grant came with the task.
 * - `artifact_unavailable`: anything else that retrying cannot fix (no manager URL, a 4xx).
 */
export type ArtifactErrorCode = 'artifact_untrusted' | 'artifact_invalid' | 'artifact_forbidden' | 'artifact_not_found' | 'artifact_unavailable';

export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
  constructor(readonly code: ArtifactErrorCode, message: string) {
    super(message);
  }
}
