import Type, { type Static } from 'typebox';
import { NAME_LIMITS } from '../constants.js';
import { Page, Timestamp } from './common.js';

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
export type Role = Static<typeof Role>;

const Username = Type.String({ minLength: 1, maxLength: NAME_LIMITS.username, pattern: '^[A-Za-z0-9._@-]+$' });
/** The password policy: at least 12 characters (NIST SP 800-63B: length over composition rules). */
export const PASSWORD_MIN_LENGTH = 12;
const Password = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: 1024 });

export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Role,
  createdAt: Timestamp,
});
export type User = Static<typeof User>;
export const UserPage = Page(User);

export const CreateUser = Type.Object(
  { username: Username, password: Password, role: Role },
  { additionalProperties: false },
);
export type CreateUser = Static<typeof CreateUser>;

export const UpdateUser = Type.Object(
  {
    password: Type.Optional(Password),
    role: Type.Optional(Role),
    /** Required when changing your own password. */
    currentPassword: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateUser = Static<typeof UpdateUser>;

export const LoginRequest = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    /** The console's login: the session goes into an HttpOnly cookie, not the response body. */
    cookie: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object({
  /** The bearer token; absent for a cookie login. */
  token: Type.Optional(Type.String()),
  /** For a cookie login: the value to send in `x-csrf-token` (also in the `pallas_csrf` cookie). */
  csrfToken: Type.Optional(Type.String()),
  expiresAt: Timestamp,
  user: User,
});
export type LoginResponse = Static<typeof LoginResponse>;
