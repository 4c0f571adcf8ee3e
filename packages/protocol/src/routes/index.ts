/**
 * `@pallas/protocol/routes`: the REST route table and its types, as plain data without the
 * schema library, so a browser bundle can carry it (the web console does, through the client).
 */
export { ROUTES, ROUTE_NAMES, type RouteName, type Routes } from './route-table.js';
export type {
  HttpMethod, JsonRouteName, PagedRouteName, PageItem, RouteBody, RouteParams, RouteQuery, RouteResult, RouteRole, RouteSpec, SchemaName,
} from './route-types.js';

/** Where the REST API lives on a manager. */
export const API_PREFIX = '/api/v1';

/**
 * A route's path with its `:name` parameters filled in (each encoded as one path segment):
 * `fillPath('/devices/:id/vms', {id: 'a b'})` is `/devices/a%20b/vms`. A missing parameter is
 * an error, never an `undefined` in a URL.
 */
export function fillPath(path: string, params: Readonly<Record<string, string>> | undefined): string {
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params?.[name];
    if (typeof value !== 'string' || value === '') throw new TypeError(`path ${path} needs the parameter "${name}"`);
    return encodeURIComponent(value);
  });
}
