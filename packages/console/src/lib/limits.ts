/**
 * Length limits of names, said in words. The console never cuts a name (an input's `maxLength`
 * attribute would silently cut a pasted name): it shows how long the name is and the limit,
 * and the manager refuses an over-long name with a 400 that names the limit too.
 */
export function tooLongText(length: number, limit: number): string {
  return `Too long: ${length.toLocaleString('en')} characters; the limit is ${limit.toLocaleString('en')}`;
}

/** The message for `value` when it is longer than `limit` characters, else undefined. */
export function lengthError(value: string, limit: number | undefined): string | undefined {
  return limit !== undefined && value.length > limit ? tooLongText(value.length, limit) : undefined;
}
