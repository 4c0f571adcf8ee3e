import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface SocketEntry {
  proto: 'tcp' | 'tcp6' | 'udp' | 'udp6' | 'unix';
  inode: number;
  /** "address:port" (hex, as the kernel prints it) or the unix path. */
  local: string;
  state: string;
}

/** Socket inodes held open by a process, from the links in /proc/<pid>/fd. */
export function socketInodesOf(pid: number): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(Number(m[1]));
  }
  return inodes;
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';
const UNIX_ACCEPTCON = 0x10000;

function inetTable(pid: number, proto: 'tcp' | 'tcp6' | 'udp' | 'udp6'): SocketEntry[] {
  const lines = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    return { proto, local: f[1]!, state: f[3]!, inode: Number(f[9]) };
  });
}

function unixTable(pid: number): SocketEntry[] {
  const lines = readFileSync(`/proc/${pid}/net/unix`, 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    return { proto: 'unix' as const, state: f[3]!, inode: Number(f[6]), local: f[7] ?? '' };
  });
}

/**
 * Every socket of the process that accepts traffic from outside: TCP in LISTEN, UDP bound
 * and unconnected (it would receive datagrams), and unix sockets accepting connections.
 * Read straight from /proc, independent of the program under test.
 */
export function listeningSocketsOf(pid: number): SocketEntry[] {
  const mine = socketInodesOf(pid);
  const all = [
    ...inetTable(pid, 'tcp').filter((s) => s.state === TCP_LISTEN),
    ...inetTable(pid, 'tcp6').filter((s) => s.state === TCP_LISTEN),
    ...inetTable(pid, 'udp').filter((s) => s.state === UDP_UNCONNECTED),
    ...inetTable(pid, 'udp6').filter((s) => s.state === UDP_UNCONNECTED),
    ...unixTable(pid).filter((s) => (parseInt(s.state, 16) & UNIX_ACCEPTCON) !== 0),
  ];
  return all.filter((s) => mine.has(s.inode));
}

const TCP_ESTABLISHED = '01';

/**
 * The process's TCP connections to `remotePort` on any address that are established now, by
 * socket inode (IPv4 and IPv6), read from /proc: e.g. an agent's link to its MQTT broker, to
 * watch it being closed by the other side without asking the program.
 */
export function establishedConnectionsOf(pid: number, remotePort: number): number[] {
  const mine = socketInodesOf(pid);
  const found: number[] = [];
  for (const proto of ['tcp', 'tcp6'] as const) {
    const lines = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      const port = Number.parseInt(f[2]?.split(':')[1] ?? '', 16);
      const inode = Number(f[9]);
      if (port === remotePort && f[3] === TCP_ESTABLISHED && mine.has(inode)) found.push(inode);
    }
  }
  return found;
}
