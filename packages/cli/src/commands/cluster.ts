/** `pallas cluster`: the managers sharing the database, and which one runs each job (docs/scale-out.md). */
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { formatRelative, formatTimestamp } from '../output/format.js';
import { formatTable } from '../output/table.js';
import { withContext } from './common.js';

export function registerCluster(program: Command, io: Io): void {
  program
    .command('cluster')
    .description('show the managers sharing the database, the broker, and which manager runs each job (operator)')
    .action(
      withContext(io, async (ctx) => {
        const client = await ctx.client();
        const status = await client.call('clusterStatus', {});
        const alive = status.managers.filter((m) => m.alive).length;
        ctx.emit(status, () =>
          [
            `database ${status.database}, broker ${status.broker.kind} (${status.broker.ok ? 'ok' : `DOWN${status.broker.detail ? `: ${status.broker.detail}` : ''}`}), ` +
              `${alive} of ${status.managers.length} managers alive; answered by ${status.answeredBy}`,
            '',
            formatTable(
              ['MANAGER', 'HOST', 'PID', 'VERSION', 'STATE', 'STARTED', 'LAST HEARTBEAT'],
              status.managers.map((m) => [
                m.id === status.answeredBy ? `${m.id} *` : m.id, m.hostname, String(m.pid), m.version, m.alive ? 'alive' : 'dead',
                formatTimestamp(m.startedAt), formatRelative(m.lastHeartbeatAt),
              ]),
            ),
            '',
            formatTable(['JOB', 'RUN BY', 'LEASE UNTIL'], status.leases.map((l) => [l.name, l.holder, formatTimestamp(l.expiresAt)])),
          ].join('\n'),
        );
      }),
    );
}
