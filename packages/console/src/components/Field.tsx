import type { InputHTMLAttributes, ReactNode } from 'react';
import { lengthError } from '../lib/limits.js';

/**
 * A labelled input with its validation message under it. `maxLength` is checked, not passed
 * to the input: the browser would cut a pasted over-long name silently, where the operator
 * should see "Too long: 300 characters; the limit is 80" (and the manager refuses it too).
 */
export function Field({ label, error, hint, maxLength, ...input }: InputHTMLAttributes<HTMLInputElement> & { label: ReactNode; error?: string | undefined; hint?: ReactNode }) {
  const id = `field-${input.name}`;
  const shown = (typeof input.value === 'string' ? lengthError(input.value, maxLength) : undefined) ?? error;
  return (
    <label className={`field${shown ? ' invalid' : ''}`} htmlFor={id}>
      <span>{label}</span>
      <input id={id} aria-invalid={shown ? true : undefined} aria-describedby={shown ? `${id}-error` : undefined} {...input} />
      {shown ? <small id={`${id}-error`} className="field-error">{shown}</small> : hint ? <small className="muted">{hint}</small> : null}
    </label>
  );
}
