/**
 * The highest status rate a receiver keeps up with: offered rates rise from 1,000/s in steps of
 * 1.33–1.5×; at each step the offered messages must all be counted by the receiver (persisted,
 * or delivered to a subscriber) within 1.5 s after the step (the manager flushes every 250 ms).
 * The first step that falls behind ends the ladder; two more steps then halve the gap between
 * it and the last step kept up with. The highest step kept up with is the figure, as the rate
 * the receiver actually took.
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
/** Steps that halve the gap between the last rate kept up with and the first one not. */
const BISECT_STEPS = 2;

/** Waits until the count has not moved for a second (at most 60 s): a backlog drained or lost. */
async function settled(count: () => Promise<number>): Promise<void> {
  const end = performance.now() + 60_000;
  let last = await count();
  while (performance.now() < end) {
    await sleep(1000);
    const now = await count();
    if (now === last) return;
    last = now;
  }
}

export async function rampStatus(
  offer: (rate: number) => Promise<{ offered: number; sendSeconds: number }>,
  count: () => Promise<number>,
  seconds: number,
  rates = [1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000, 32000, 48000, 64000],
  drainMs = DRAIN_MS,
): Promise<RampResult> {
  const steps: RampStep[] = [];
  const step = async (rate: number): Promise<RampStep> => {
    const c0 = await count();
    const t0 = performance.now();
    const { offered, sendSeconds } = await offer(rate);
    const senderBound = sendSeconds > seconds * 1.1;
    let counted = (await count()) - c0;
    const drainEnd = performance.now() + drainMs;
    while (counted < offered && performance.now() < drainEnd) {
      await sleep(100);
      counted = (await count()) - c0;
    }
    const secondsTaken = (performance.now() - t0) / 1000;
    // Kept up: everything offered was counted, and the step took no more than its own length
    // and the drain (a sender that could not offer the rate would stretch the step).
    const keptUp = counted >= offered && secondsTaken <= seconds + drainMs / 1000 + 1 && !senderBound;
    const result = { offered, counted, rate: counted / secondsTaken, keptUp, senderBound };
    steps.push(result);
    if (keptUp) await sleep(1000);
    else await settled(count); // what it fell behind on must not count for the next step
    return result;
  };
  let kept: number | undefined;
  let behind: number | undefined;
  for (const rate of rates) {
    if (!(await step(rate)).keptUp) { behind = rate; break; }
    kept = rate;
  }
  // The ladder's steps are 1.33–1.5× apart, coarser than the difference between two receivers:
  // one that keeps up with 15,000/s but not 16,000/s would be credited 12,000/s. Halving the
  // gap between the last step kept up with and the first one not, BISECT_STEPS times, puts the
  // figure within about 5 % of what the receiver takes. A sender-bound step ends it.
  for (let i = 0; i < BISECT_STEPS && kept !== undefined && behind !== undefined && !steps.at(-1)!.senderBound; i++) {
    const mid = Math.round((kept + behind) / 2);
    if ((await step(mid)).keptUp) kept = mid;
    else behind = mid;
  }
  // The figure is the step kept up with at the highest offered rate (bisection steps come after
  // the ladder's, so not the last one kept).
  const keptSteps = steps.filter((s) => s.keptUp);
  const best = keptSteps.reduce<RampStep | undefined>((a, b) => (!a || b.offered > a.offered ? b : a), undefined);
  const highestKeptUp = best ? best.rate : Number.NaN;
  const lowerBound = steps.at(-1)!.senderBound;
  let failed: string | undefined;
  if (!keptSteps.length) failed = `fell behind at the first step (${rates[0]}/s)`;
  else if (behind === undefined) failed = `kept up with every step up to ${rates.at(-1)}/s: the load generator, not the receiver, is the limit`;
  return { steps, highestKeptUp, lowerBound, ...(failed ? { failed } : {}) };
}
