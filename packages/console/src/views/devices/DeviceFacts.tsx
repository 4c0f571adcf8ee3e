import type { Device } from '@pallas/protocol';
import { Meter } from '../../components/Meter.js';
import { formatDuration, formatGB, formatMiB } from '@pallas/protocol/units';
import { formatDateTime, formatRelative } from '../../lib/format.js';

/** What the host says about itself, and its CPU, memory and datastores as bars. */
export function DeviceFacts({ device }: { device: Device }) {
  const f = device.facts;
  if (!f) return <section className="panel"><h2>Host</h2><p className="muted">The device has not reported its host facts yet.</p></section>;
  const facts: Array<[string, string]> = [
    ['Host name', f.hostname],
    ['Hypervisor', `${f.hypervisor.kind} ${f.hypervisor.version}${f.hypervisor.build ? ` (build ${f.hypervisor.build})` : ''}`],
    ['Model', f.model ?? '—'],
    ['CPU', `${f.cpu.model} · ${f.cpu.cores} cores${f.cpu.mhz ? ` · ${(f.cpu.mhz / 1000).toFixed(1)} GHz` : ''}`],
    ['Networks', f.networks.join(', ') || '—'],
    ['Agent', `${f.agentVersion} · up ${formatDuration(f.agentUptimeSec)}`],
    ['Host uptime', formatDuration(f.uptimeSec)],
    ['Enrolled', formatDateTime(device.enrolledAt)],
    ['Last seen', device.presence === 'online' ? 'now (online)' : formatRelative(device.lastSeenAt)],
    ['Device id', device.id],
  ];
  return (
    <div className="columns">
      <section className="panel">
        <h2>Host</h2>
        <dl className="facts">
          {facts.map(([k, v]) => (
            <div key={k}><dt>{k}</dt><dd className={k === 'Device id' ? 'mono' : undefined}>{v}</dd></div>
          ))}
        </dl>
      </section>
      <section className="panel">
        <h2>Resources</h2>
        {f.cpu.usagePct !== undefined && <Meter label="CPU" used={f.cpu.usagePct} total={100} detail={`${f.cpu.usagePct.toFixed(0)}% of ${f.cpu.cores} cores`} />}
        {f.memory.usedMB !== undefined && (
          <Meter label="Memory" used={f.memory.usedMB} total={f.memory.totalMB} detail={`${formatMiB(f.memory.usedMB)} of ${formatMiB(f.memory.totalMB)}`} />
        )}
        {f.datastores.map((ds) => (
          <Meter key={ds.name} label={`Datastore ${ds.name}`} used={ds.capacityGB - ds.freeGB} total={ds.capacityGB}
            detail={`${formatGB(ds.capacityGB - ds.freeGB)} used of ${formatGB(ds.capacityGB)}`} />
        ))}
      </section>
    </div>
  );
}
