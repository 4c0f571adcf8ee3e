/**
 * The highest status rate a receiver keeps up with: offered rates rise from 1,000/s in steps of
 * 1.33–1.5×; at each step the offered messages must all be counted by the receiver (persisted,
 * or delivered to a subscriber) within 1.5 s after the step (the manager flushes every 250 ms). The first step that falls behind ends the ramp;
 * the highest step before it is the figure, as the rate the receiver actually took.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RampStep {
  offered: number;
  counted: number;
  /** Counted messages per second over the step and its drain. */
  rate: number;
  keptUp: boolean;
  /** The sender took over 10% longer than the step to offer it: the load generator was the limit. */
  senderBound: boolean;
}

export interface RampResult {
  steps: RampStep[];
  /**
   * Rate counted (messages / (step + drain time)) at the highest step kept up with: what the
   * receiver took, not what was offered.
   */
  highestKeptUp: number;
  /** The ramp ended because the sender could not offer more: the figure is a lower bound. */
  lowerBound: boolean;
  /** Why there is no figure (the first step already fell behind, or the ramp never fell behind). */
  failed?: string;
}

const DRAIN_MS = 1500;

export async function rampStatus(
  offer: (rate: number) => Promise<{ offered: number; sendSeconds: number }>,
  count: () => Promise<number>,
  seconds: number,
  rates = [1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000, 32000, 48000, 64000],
): Promise<RampResult> {
  const steps: RampStep[] = [];
  for (const rate of rates) {
    const c0 = await count();
    const t0 = performance.now();
    const { offered, sendSeconds } = await offer(rate);
    const senderBound = sendSeconds > seconds * 1.1;
    let counted = (await count()) - c0;
    const drainEnd = performance.now() + DRAIN_MS;
    while (counted < offered && performance.now() < drainEnd) {
      await sleep(100);
      counted = (await count()) - c0;
    }
    const secondsTaken = (performance.now() - t0) / 1000;
    // Kept up: everything offered was counted, and the step took no more than its own length
    // and the drain (a sender that could not offer the rate would stretch the step).
    const keptUp = counted >= offered && secondsTaken <= seconds + DRAIN_MS / 1000 + 1 && !senderBound;
    steps.push({ offered, counted, rate: counted / secondsTaken, keptUp, senderBound });
    if (!keptUp) break;
    await sleep(1000);
  }
  const kept = steps.filter((s) => s.keptUp);
  const highestKeptUp = kept.length ? kept.at(-1)!.rate : Number.NaN;
  const lowerBound = steps.at(-1)!.senderBound;
  let failed: string | undefined;
  if (!kept.length) failed = `fell behind at the first step (${rates[0]}/s)`;
  else if (kept.length === steps.length) failed = `kept up with every step up to ${rates.at(-1)}/s: the load generator, not the receiver, is the limit`;
  return { steps, highestKeptUp, lowerBound, ...(failed ? { failed } : {}) };
}
