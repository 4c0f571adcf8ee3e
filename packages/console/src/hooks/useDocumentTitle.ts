import { useEffect, useLayoutEffect } from 'react';

const BRAND = 'Pallas';

/** "Devices · Pallas": what a tab, a window list and a screen reader call the page. */
export function pageTitle(...parts: Array<string | undefined>): string {
  return [...parts.filter((p): p is string => !!p), BRAND].join(' · ');
}

/**
 * The section's title, set by the router as the path changes. It is a layout effect on
 * purpose: React runs a parent's layout effects before any passive effect, so the title a view
 * sets with `useDocumentTitle` (naming its device or task) always lands after it.
 */
export function useSectionTitle(title: string): void {
  useLayoutEffect(() => {
    document.title = title;
  }, [title]);
}

/** A view's own title, e.g. the device's name once it is loaded (nothing until then). */
export function useDocumentTitle(title: string | undefined): void {
  useEffect(() => {
    if (title) document.title = title;
  }, [title]);
}
