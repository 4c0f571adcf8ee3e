// Its own file, without the OVF parser: the task runner checks for it on every failure and
// imports the parser (fast-xml-parser) only when a task deploys an OVA.

/**
 * An OVA the agent cannot deploy: the message names the file and what is wrong with it. A
 * task fails with its `code`, `invalid_spec`, as for any spec the device cannot honour.
 */
export class OvaError extends Error {
  override readonly name = 'OvaError';
  readonly code = 'invalid_spec';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
