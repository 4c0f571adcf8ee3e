import { Readable } from 'node:stream';
import type { AuditService } from '../../../services/audit/audit-service.js';
import { AUDIT_CSV_COLUMNS, auditCsvLine } from '../../../services/audit/audit-service.js';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

type Filters = Parameters<AuditService['all']>[0];

/** The export's bytes: CSV (a header line, then one line per entry) or one JSON array, produced batch by batch. */
async function* exportLines(audit: AuditService, filters: Filters, format: 'csv' | 'json'): AsyncGenerator<string> {
  if (format === 'csv') yield `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
  else yield '[';
  let first = true;
  for await (const batch of audit.all(filters)) {
    if (format === 'csv') {
      yield batch.map(auditCsvLine).join('');
    } else {
      yield `${first ? '\n' : ',\n'}${batch.map((e) => JSON.stringify(e)).join(',\n')}`;
      first = false;
    }
  }
  if (format === 'json') yield first ? ']\n' : '\n]\n';
}

export async function auditRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listAudit', async (req) => ctx.audit.list(req.query));

  // Streamed: the whole log is never held in memory, 500 entries are read at a time.
  serve(app, ctx, 'exportAudit', async (req, reply) => {
    const { format = 'csv', ...filters } = req.query;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    void reply
      .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="pallas-audit-${stamp}.${format}"`)
      .header('cache-control', 'no-store');
    if (req.method === 'HEAD') return reply.send();
    return reply.send(Readable.from(exportLines(ctx.audit, filters, format)));
  });
}
