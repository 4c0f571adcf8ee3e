/**
 * Why an `agent.update` failed, as the task's error code (docs/tasks.md):
 * - `invalid_artifact`: the file is not an agent bundle (`--version` fails or says no version),
 *   or it is the version already running.
 * - `rolled_back`: the new version did not report healthy; the message is the supervisor's reason.
 * - `invalid_state`: another update is being tried.
 */
export type UpdateErrorCode = 'invalid_artifact' | 'rolled_back' | 'invalid_state';

export class UpdateError extends Error {
  override readonly name = 'UpdateError';

  constructor(
    readonly code: UpdateErrorCode,
    message: string,
  ) {
    super(message);
  }
}
