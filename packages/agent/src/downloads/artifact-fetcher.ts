import type { ArtifactGrant } from '@pallas/protocol';
import type { OperationContext } from '../drivers/driver.js';

/**
 * The port between the task runner and the downloader: a task that uses an artifact asks for
 * it here and gets a local file that matches its signed manifest, or an error that fails the
 * task with the reason. The adapter (`downloader.ts`) downloads over HTTPS with resume, retries
 * and an optional bandwidth cap; tests of code that only needs "a verified file" may pass a
 * fake.
 */
export interface ArtifactFetcher {
  /**
   * Resolves with the path of the verified file for `grant.manifest` (size and SHA-256 checked,
   * signature checked against the key pinned at enrollment). Resumes a partial file left by an
   * earlier attempt, also one from before an agent restart. Reports download progress through
   * `ctx.progress` (0–100 of the bytes). Rejects with `ctx.signal.reason` when aborted, and with
   * an `ArtifactError` (code, message) when the artifact cannot be had or is not what the
   * manifest says. The file stays until `release` (several tasks may use one artifact).
   * `grant.url` is read again at each attempt: the task runner hands a grant whose URL follows
   * the task's latest `run` (a fresh URL after a resend).
   */
  fetch(grant: ArtifactGrant, ctx: OperationContext): Promise<string>;
  /** The task that used the artifact is over (for any outcome): partial and verified files may go. */
  release(artifactId: string): Promise<void>;
}
