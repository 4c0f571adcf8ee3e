/**
 * Text a device reported, made storable on both databases: PostgreSQL refuses U+0000 in a
 * text column (SQLite keeps it), and one such character in a device's VM name or task message
 * would fail every statement that carries it. It becomes U+FFFD, the replacement character.
 * Text from the REST API is refused with 400 instead (transport/http/errors.ts): its sender can
 * correct it; a device's report cannot be sent back.
 */
export function storableText<T extends string | null | undefined>(text: T): T {
  return (text?.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text) as T;
}
