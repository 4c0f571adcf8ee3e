/** `pallas devices update-agent` and `pallas devices patch`: tasks that change the device itself. */
import { InvalidArgumentError, type Command } from 'commander';
import { ArtifactId, checker, type AgentUpdateRequest } from '@pallas/protocol';
import type { Context } from '../context.js';
import type { Io } from '../io.js';
import { clean } from '../output/table.js';
import { intArg, withContext } from './common.js';
import { resolveDevice } from './resolve.js';
import { reportTask, timeoutArg } from './task-report.js';

interface Flags {
  artifact: string;
  timeout?: number;
  wait?: boolean;
}

const checkArtifactId = checker(ArtifactId);

function artifactArg(value: string): string {
  if (!checkArtifactId.check(value)) {
    throw new InvalidArgumentError('give an artifact ID (art_…; `pallas artifacts ls` lists them)');
  }
  return value;
}

function flags(cmd: Command, kind: string): Command {
  return cmd
    .argument('<device>', 'device ID or exact name')
    .requiredOption('--artifact <id>', `the ${kind} artifact (\`pallas artifacts ls --kind ${kind}\`)`, artifactArg)
    .option('--timeout <duration>', 'give up if not done within this time from now, queueing included: 30m, 2h, 7d (server default 24h)', timeoutArg)
    .option('--wait', 'follow the task until it ends, with its progress; exit non-zero unless it succeeded');
}

export function registerDeviceUpdates(devices: Command, io: Io): void {
  flags(
    devices
      .command('update-agent')
      .description("install a new agent version on a device; it rolls back by itself unless the new one reports healthy in time"),
    'agent',
  )
    .option('--healthy-sec <n>', 'seconds the new version has to reconnect and report healthy (10-3600; default 120)', intArg(10, 3600))
    .action(
      withContext(io, async (ctx: Context, ref: string, opts: Flags & { healthySec?: number }) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        const request: AgentUpdateRequest = { artifactId: opts.artifact };
        if (opts.healthySec !== undefined) request.healthySec = opts.healthySec;
        const task = await client.call('updateAgent', { params: { id: device.id }, body: request, query: { timeoutSec: opts.timeout } });
        await reportTask(ctx, client, task, { wait: opts.wait, target: `device '${clean(device.name)}'` });
      }),
    );

  flags(devices.command('patch').description("apply a patch artifact to a device's hypervisor (where its driver supports it)"), 'patch').action(
    withContext(io, async (ctx: Context, ref: string, opts: Flags) => {
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const task = await client.call('patchDeviceHost', { params: { id: device.id }, body: { artifactId: opts.artifact }, query: { timeoutSec: opts.timeout } });
      await reportTask(ctx, client, task, { wait: opts.wait, target: `device '${clean(device.name)}'` });
    }),
  );
}
