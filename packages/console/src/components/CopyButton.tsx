import { useState } from 'react';

/**
 * Copies text to the clipboard. The Clipboard API exists only on secure origins (https or
 * localhost); elsewhere it falls back to selecting the text in a hidden field and copying that.
 */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = async () => {
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
      else copyWithSelection(text);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
    setTimeout(() => setCopied(null), 2000);
  };
  return (
    <button type="button" className="button small" onClick={() => void copy()}>
      {copied === 'yes' ? 'Copied' : copied === 'failed' ? 'Select and copy by hand' : label}
    </button>
  );
}

function copyWithSelection(text: string): void {
  const field = document.createElement('textarea');
  field.value = text;
  field.setAttribute('readonly', '');
  field.style.position = 'fixed';
  field.style.opacity = '0';
  document.body.append(field);
  field.select();
  const ok = document.execCommand('copy');
  field.remove();
  if (!ok) throw new Error('copy refused');
}
