import Type, { type Static } from 'typebox';
import { NAME_LIMITS } from '../constants.js';
import { Page, Timestamp } from './common.js';
import { Role } from './users.js';

/** A named token for automation (`Authorization: Bearer pat_…`); its secret is never listed. */
export const ApiToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  userId: Type.String(),
  username: Type.String(),
  createdAt: Timestamp,
  expiresAt: Type.Optional(Timestamp),
  lastUsedAt: Type.Optional(Timestamp),
  revokedAt: Type.Optional(Timestamp),
});
export type ApiToken = Static<typeof ApiToken>;
export const ApiTokenPage = Page(ApiToken);

export const CreateApiToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: NAME_LIMITS.apiToken }),
    /** Days until it stops working; omit for a token that never expires. */
    expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
    /** At most the creator's own role; default the creator's role. */
    role: Type.Optional(Role),
  },
  { additionalProperties: false },
);
export type CreateApiToken = Static<typeof CreateApiToken>;

/** The secret is in this response only; the manager keeps its hash. */
export const CreatedApiToken = Type.Intersect([ApiToken, Type.Object({ token: Type.String() })]);
export type CreatedApiToken = Static<typeof CreatedApiToken>;

export const ApiTokenQuery = Type.Object(
  {
    /** Admins only: every user's tokens instead of their own. */
    all: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  { additionalProperties: false },
);
export type ApiTokenQuery = Static<typeof ApiTokenQuery>;
