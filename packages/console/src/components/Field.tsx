import type { InputHTMLAttributes, ReactNode } from 'react';

/** A labelled input with its validation message under it. */
export function Field({ label, error, hint, ...input }: InputHTMLAttributes<HTMLInputElement> & { label: ReactNode; error?: string | undefined; hint?: ReactNode }) {
  const id = `field-${input.name}`;
  return (
    <label className={`field${error ? ' invalid' : ''}`} htmlFor={id}>
      <span>{label}</span>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined} {...input} />
      {error ? <small id={`${id}-error`} className="field-error">{error}</small> : hint ? <small className="muted">{hint}</small> : null}
    </label>
  );
}
