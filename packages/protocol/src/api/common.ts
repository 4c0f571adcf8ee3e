import Type, { type Static, type TSchema } from 'typebox';
import { PAGE_LIMITS } from '../constants.js';

/** Every REST error has this shape, with the matching HTTP status. */
export const ApiError = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
    }),
  },
  { additionalProperties: false },
);
export type ApiError = Static<typeof ApiError>;

export const Timestamp = Type.String({ format: 'date-time' });

export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PAGE_LIMITS.max, default: PAGE_LIMITS.default })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
};
/** The query of a listing that has no filters, only paging. */
export const PageQuery = Type.Object(Paging, { additionalProperties: false });
export type PageQuery = Static<typeof PageQuery>;

export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    total: Type.Integer({ minimum: 0 }),
    limit: Type.Integer({ minimum: 1 }),
    offset: Type.Integer({ minimum: 0 }),
  });
}
export interface PageOf<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
