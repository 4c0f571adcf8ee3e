import { RANGES, RANGE_KEYS, type RangeKey } from '../lib/series.js';

/** 1 h / 24 h / 7 d: which range the charts beside it show (toggle buttons, one pressed). */
export function RangeToggle({ value, onChange, label }: { value: RangeKey; onChange(range: RangeKey): void; label: string }) {
  return (
    <div className="range-toggle" role="group" aria-label={label}>
      {RANGE_KEYS.map((key) => (
        <button key={key} type="button" className="button small" aria-pressed={key === value} data-range={key} onClick={() => onChange(key)}>
          {RANGES[key].label}
        </button>
      ))}
    </div>
  );
}
