/**
 * Random packet loss on loopback ports with iptables' `statistic` match (this kernel has no
 * netem). Each rule carries a comment naming this process, and every rule added is removed by
 * `clear()`, which also runs when the process exits: the machine is shared, so a rule left
 * behind would drop other people's packets. Needs root (CI has it).
 */
import { execFileSync } from 'node:child_process';

const IPTABLES = '/usr/sbin/iptables';

export interface PacketLoss {
  /** Drops this share (0–1) of the TCP packets sent to each of these ports; replaces any earlier set. */
  set(ports: number[], probability: number): void;
  /** Removes every rule this process added. */
  clear(): void;
  /** The ports currently losing packets. */
  readonly ports: readonly number[];
}

/** Why packet loss cannot be injected here, or undefined. */
export function packetLossMissingReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'packet loss needs root (iptables)';
  try {
    execFileSync(IPTABLES, ['-S', 'INPUT'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${IPTABLES} does not work here: apt-get install -y iptables`;
  }
}

export function packetLoss(): PacketLoss {
  const tag = `pallas-soak-${process.pid}`;
  let rules: string[][] = [];
  const run = (args: string[]) => execFileSync(IPTABLES, ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const clear = () => {
    for (const rule of rules) {
      try {
        run(['-D', 'INPUT', ...rule]);
      } catch {
        /* already gone */
      }
    }
    rules = [];
  };
  // Last line of defence: however this process ends its run, its rules go with it. Signals
  // are the caller's to handle (scripts/soak.ts turns SIGINT and SIGTERM into a clean stop).
  process.once('exit', clear);
  return {
    set(ports, probability) {
      clear();
      for (const port of ports) {
        const rule = ['-p', 'tcp', '--dport', String(port), '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-m', 'comment', '--comment', tag, '-j', 'DROP'];
        run(['-I', 'INPUT', ...rule]);
        rules.push(rule);
      }
    },
    clear,
    get ports() { return rules.map((r) => Number(r[3])); },
  };
}
