import type { TSchema } from 'typebox';
import * as schemas from './schemas.js';
import type { SchemaName } from './route-types.js';

const byName = schemas as unknown as Record<SchemaName, TSchema>;

/** The schema a route table entry names (for the manager, which validates and documents with it). */
export function schemaOf(name: SchemaName): TSchema {
  return byName[name];
}
