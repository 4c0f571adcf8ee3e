/**
 * The shape of a route table entry, and the types a route's parts have once its schema names
 * are looked up. Types only: nothing here exists at run time.
 */
import type { Static } from 'typebox';
import type { ROLES } from '../constants.js';
import type { RouteName, Routes } from './route-table.js';

type SchemaModule = typeof import('./schemas.js');
/** The names `schemas.ts` exports that are schemas (TypeBox marks each with `~kind`). */
export type SchemaName = { [K in keyof SchemaModule]: SchemaModule[K] extends { '~kind': string } ? K : never }[keyof SchemaModule];

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';
/** Who may call a route: anyone (`public`), or a user or API token with at least this role. */
export type RouteRole = 'public' | (typeof ROLES)[number];

export interface RouteSpec {
  method: HttpMethod;
  /** Under `/api/v1`; `:name` marks a path parameter, which `params` describes. */
  path: string;
  role: RouteRole;
  /** The OpenAPI tag that groups it. */
  tag: string;
  summary: string;
  description?: string;
  params?: SchemaName;
  query?: SchemaName;
  /** A JSON body, or `binary`: the raw bytes (Content-Type: application/octet-stream). */
  body?: SchemaName | 'binary';
  /** The status of success; errors are always `{error: {code, message}}`. */
  status: 200 | 201 | 202 | 204;
  /** The answer's JSON, raw bytes, or a server-sent event stream; none for 204. */
  response?: SchemaName | 'binary' | 'event-stream';
  /** The audit log action of a state-changing route (the handler may set it instead). */
  audit?: string;
}

type Part<R extends RouteName, K extends 'params' | 'query'> = Routes[R] extends { [P in K]: infer N extends SchemaName } ? Static<SchemaModule[N]> : undefined;

/** A route's path parameters, e.g. `{id: string; vmId: string}`; undefined when it has none. */
export type RouteParams<R extends RouteName> = Part<R, 'params'>;
/** A route's query string as an object; undefined when it takes none. */
export type RouteQuery<R extends RouteName> = Part<R, 'query'>;
/** A route's JSON body; `unknown` for a binary one (the caller passes bytes); undefined for none. */
export type RouteBody<R extends RouteName> = Routes[R] extends { body: infer N }
  ? N extends SchemaName ? Static<SchemaModule[N]> : unknown
  : undefined;
/** What a successful call answers with: the decoded JSON, or undefined for 204 and non-JSON answers. */
export type RouteResult<R extends RouteName> = Routes[R] extends { response: infer N extends SchemaName } ? Static<SchemaModule[N]> : undefined;

/** Routes whose answer is one JSON document (what a plain `call` can return). */
export type JsonRouteName = { [R in RouteName]: Routes[R] extends { response: 'binary' | 'event-stream' } ? never : Routes[R] extends { body: 'binary' } ? never : R }[RouteName];

/** Routes that answer a page (`{items, total, limit, offset}`) and take `limit`/`offset`. */
export type PagedRouteName = { [R in JsonRouteName]: RouteResult<R> extends { items: unknown[]; total: number } ? R : never }[JsonRouteName];
/** The item type of a paged route. */
export type PageItem<R extends PagedRouteName> = RouteResult<R> extends { items: Array<infer T> } ? T : never;
