import Type, { type Static } from 'typebox';
import { Timestamp } from './common.js';

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
export type Role = Static<typeof Role>;

const Username = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' });
const Password = Type.String({ minLength: 8, maxLength: 1024 });

export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Role,
  createdAt: Timestamp,
});
export type User = Static<typeof User>;

export const CreateUser = Type.Object(
  { username: Username, password: Password, role: Role },
  { additionalProperties: false },
);
export type CreateUser = Static<typeof CreateUser>;

export const UpdateUser = Type.Object(
  { password: Type.Optional(Password), role: Type.Optional(Role) },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateUser = Static<typeof UpdateUser>;

export const LoginRequest = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object({
  token: Type.String(),
  expiresAt: Timestamp,
  user: User,
});
export type LoginResponse = Static<typeof LoginResponse>;
