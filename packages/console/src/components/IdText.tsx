/**
 * An id shown after the name it belongs to: small, monospace, selected whole by one click
 * (`user-select: all`) so it can be copied without a button; `short` shows its start only,
 * the whole id stays in the selection and the tooltip.
 */
export function IdText({ id, short }: { id: string; short?: boolean }) {
  return <code className="id-text" title={id} data-id={id}>{short && id.length > 12 ? `${id.slice(0, 8)}…` : id}</code>;
}
