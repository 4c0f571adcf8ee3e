import Type, { type Static } from 'typebox';
import { NAME_LIMITS } from '../constants.js';
import { Page, Timestamp } from './common.js';

export const EnrollmentToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  expiresAt: Timestamp,
  maxUses: Type.Integer(),
  uses: Type.Integer(),
  revoked: Type.Boolean(),
  createdAt: Timestamp,
  createdBy: Type.String(),
});
export type EnrollmentToken = Static<typeof EnrollmentToken>;
export const EnrollmentTokenPage = Page(EnrollmentToken);

export const CreateEnrollmentToken = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: NAME_LIMITS.enrollmentToken })),
    /** Lifetime in seconds; default one day. */
    ttlSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 365 * 86400 })),
    /** How many devices may enroll with it; default 1. */
    maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type CreateEnrollmentToken = Static<typeof CreateEnrollmentToken>;

/** The token's secret is shown once, in this response only; the manager keeps its hash. */
export const CreatedEnrollmentToken = Type.Intersect([EnrollmentToken, Type.Object({ token: Type.String() })]);
export type CreatedEnrollmentToken = Static<typeof CreatedEnrollmentToken>;
