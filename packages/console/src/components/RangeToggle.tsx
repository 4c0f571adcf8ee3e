import { Link, useLocation } from '../app/router.js';
import { RANGES, RANGE_KEYS, type RangeKey } from '../lib/series.js';

/**
 * 1 h / 24 h / 7 d: which range the charts beside it show. Links, since the range is in the
 * page's address (`?range=`, none for the default 24 h): back returns to the previous range,
 * and a viewer's pages keep having no button.
 */
export function RangeToggle({ value, label }: { value: RangeKey; label: string }) {
  const { path, query } = useLocation();
  const to = (key: RangeKey) => {
    const q = new URLSearchParams(query);
    if (key === '24h') q.delete('range');
    else q.set('range', key);
    const search = q.toString();
    return `${path}${search ? `?${search}` : ''}`;
  };
  return (
    <nav className="range-toggle" aria-label={label}>
      {RANGE_KEYS.map((key) => (
        <Link key={key} to={to(key)} className="button small" aria-current={key === value ? 'true' : undefined} data-range={key}>
          {RANGES[key].label}
        </Link>
      ))}
    </nav>
  );
}
