/** `pallas artifacts …`: upload, list, show and delete artifacts (OVA images, patches, agent versions). */
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { ARTIFACT_KINDS, type ArtifactKind } from '@pallas/protocol';
import type { Io } from '../io.js';
import { formatRelative } from '../output/format.js';
import { clean, formatTable } from '../output/table.js';
import { uploadFile } from '@pallas/client/node';
import { formatBytes } from '@pallas/protocol/units';
import { TransferProgress } from '../output/transfer-progress.js';
import { fetchAll, plural, withContext } from './common.js';

export function registerArtifacts(program: Command, io: Io): void {
  const artifacts = program.command('artifacts').alias('artifact').description('manage artifacts: OVA images, patch bundles, agent versions');

  artifacts
    .command('upload')
    .description('upload a file as an artifact (streamed, with progress); a cut upload is discarded by the manager, so run it again')
    .argument('<file>', 'the file to upload')
    .addOption(new Option('--kind <kind>', 'what it is').choices(ARTIFACT_KINDS).makeOptionMandatory())
    .requiredOption('--name <name>', 'its name, e.g. ubuntu-server')
    .requiredOption('--version <version>', 'its version, e.g. 24.04.1')
    .action(
      withContext(io, async (ctx, file: string, opts: { kind: ArtifactKind; name: string; version: string }) => {
        const client = await ctx.client();
        const progress = ctx.json ? undefined : new TransferProgress(ctx.io.stdout, ctx.io.env, ctx.io.now);
        let created;
        try {
          created = await uploadFile(client, file, { kind: opts.kind, name: opts.name, version: opts.version }, { onProgress: (sent, total) => progress?.update(sent, total) });
        } finally {
          progress?.done();
        }
        ctx.emit(created, () =>
          [
            `Uploaded ${basename(file)} as artifact ${created.id} (${created.kind} ${clean(created.name)} ${clean(created.version)}, ${formatBytes(created.size)}).`,
            `sha256 ${created.sha256}`,
          ].join('\n'),
        );
      }),
    );

  artifacts
    .command('ls')
    .alias('list')
    .description('list artifacts, newest first')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(ARTIFACT_KINDS))
    .option('--name <name>', 'only this name')
    .action(
      withContext(io, async (ctx, opts: { kind?: ArtifactKind; name?: string }) => {
        const client = await ctx.client();
        const page = await fetchAll(client, 'listArtifacts', { query: { ...(opts.kind ? { kind: opts.kind } : {}), ...(opts.name ? { name: opts.name } : {}) } });
        const now = ctx.io.now();
        ctx.emit(page, () =>
          [
            formatTable(
              ['ID', 'KIND', 'NAME', 'VERSION', 'SIZE', 'SHA256', 'UPLOADED', 'BY'],
              page.items.map((a) => [a.id, a.kind, a.name, a.version, formatBytes(a.size), a.sha256.slice(0, 12), formatRelative(a.createdAt, now), a.createdBy]),
            ),
            plural(page.total, 'artifact'),
          ].join('\n'),
        );
      }),
    );

  artifacts
    .command('show')
    .description('show an artifact with its signed manifest')
    .argument('<id>', 'artifact ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const client = await ctx.client();
        const a = await client.call('getArtifact', { params: { id } });
        ctx.emit(a, () =>
          [
            `ID:        ${a.id}`,
            `Kind:      ${a.kind}`,
            `Name:      ${clean(a.name)}`,
            `Version:   ${clean(a.version)}`,
            `Size:      ${formatBytes(a.size)} (${a.size} bytes)`,
            `SHA-256:   ${a.sha256}`,
            `Uploaded:  ${a.createdAt} by ${clean(a.createdBy)}`,
            `Signed by: key ${a.keyId} (ed25519)`,
            `Signature: ${a.signature}`,
          ].join('\n'),
        );
      }),
    );

  artifacts
    .command('rm')
    .alias('delete')
    .description('delete an artifact (refused while an unfinished task uses it)')
    .argument('<id>', 'artifact ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const client = await ctx.client();
        await client.call('deleteArtifact', { params: { id } });
        ctx.emit({ id, deleted: true }, () => `Deleted artifact ${id}.`);
      }),
    );
}
