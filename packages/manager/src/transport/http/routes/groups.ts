import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function groupRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listGroups', async (req) => ctx.groups.list(req.query.limit, req.query.offset));

  serve(app, ctx, 'createGroup', async (req) => {
    req.audit = { detail: { name: req.body.name, kind: req.body.deviceIds ? 'static' : 'query', devices: req.body.deviceIds?.length ?? null, query: req.body.query ?? null } };
    const group = await ctx.groups.create(req.body, req.user!.username);
    req.audit.target = { kind: 'group', id: group.id, name: group.name };
    return group;
  });

  serve(app, ctx, 'getGroup', async (req) => ctx.groups.get(req.params.id));

  serve(app, ctx, 'updateGroup', async (req) => {
    req.audit = { target: { kind: 'group', id: req.params.id }, detail: { fields: Object.keys(req.body), devices: req.body.deviceIds?.length ?? null, query: req.body.query ?? null } };
    const group = await ctx.groups.update(req.params.id, req.body);
    req.audit.target = { kind: 'group', id: group.id, name: group.name };
    return group;
  });

  serve(app, ctx, 'deleteGroup', async (req) => {
    req.audit = { target: { kind: 'group', id: req.params.id } };
    const group = await ctx.groups.delete(req.params.id);
    req.audit.target = { kind: 'group', id: group.id, name: group.name };
  });

  serve(app, ctx, 'listGroupMembers', async (req) => ctx.devices.list(req.query, await ctx.groups.predicate(req.params.id)));
}
