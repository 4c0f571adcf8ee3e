import type { HostFacts } from '@pallas/protocol';

/** min, max and sum of one quantity over a bucket; null when no sample carried it. */
export interface Range {
  min: number;
  max: number;
  sum: number;
}

/** What one device reported in one bucket. */
export interface DeviceSamples {
  samples: number;
  cpu: Range | null;
  memUsed: Range | null;
  memTotal: number | null;
  dsUsed: Range | null;
  dsCapacity: number | null;
}

export const emptySamples = (): DeviceSamples => ({ samples: 0, cpu: null, memUsed: null, memTotal: null, dsUsed: null, dsCapacity: null });

function add(range: Range | null, value: number | undefined): Range | null {
  if (value === undefined || !Number.isFinite(value)) return range;
  if (!range) return { min: value, max: value, sum: value };
  return { min: Math.min(range.min, value), max: Math.max(range.max, value), sum: range.sum + value };
}

/** Adds one status report's facts to a bucket. */
export function addFacts(acc: DeviceSamples, facts: HostFacts): void {
  acc.samples++;
  acc.cpu = add(acc.cpu, facts.cpu.usagePct);
  acc.memUsed = add(acc.memUsed, facts.memory.usedMB);
  acc.memTotal = facts.memory.totalMB;
  let capacity = 0;
  let used = 0;
  for (const ds of facts.datastores) {
    capacity += ds.capacityGB;
    used += Math.max(0, ds.capacityGB - ds.freeGB);
  }
  if (facts.datastores.length > 0) {
    acc.dsUsed = add(acc.dsUsed, used);
    acc.dsCapacity = capacity;
  }
}

/** Adds a whole bucket into another (a fine bucket into the coarse one that holds it). */
export function addSamples(into: DeviceSamples, from: DeviceSamples): void {
  const merge = (a: Range | null, b: Range | null): Range | null =>
    !a ? b : !b ? a : { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), sum: a.sum + b.sum };
  into.samples += from.samples;
  into.cpu = merge(into.cpu, from.cpu);
  into.memUsed = merge(into.memUsed, from.memUsed);
  into.memTotal = from.memTotal ?? into.memTotal;
  into.dsUsed = merge(into.dsUsed, from.dsUsed);
  into.dsCapacity = from.dsCapacity ?? into.dsCapacity;
}
