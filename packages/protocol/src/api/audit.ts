import Type, { type Static } from 'typebox';
import { Page, Paging, Timestamp } from './common.js';

export const AuditActorKind = Type.Union([Type.Literal('user'), Type.Literal('device'), Type.Literal('token'), Type.Literal('anonymous'), Type.Literal('system')]);
export type AuditActorKind = Static<typeof AuditActorKind>;
export const AuditOutcome = Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('failed')]);
export type AuditOutcome = Static<typeof AuditOutcome>;

/** One line of the audit log: who did what, to what, when, from where, and how it went. */
export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Timestamp,
  actor: Type.Object({
    kind: AuditActorKind,
    id: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
  }),
  /** Dotted verb, e.g. `user.create`, `login.failed`, `device.rename`, `http.post`. */
  action: Type.String(),
  target: Type.Optional(Type.Object({
    kind: Type.String(),
    id: Type.String(),
    name: Type.Optional(Type.String()),
  })),
  outcome: AuditOutcome,
  ip: Type.Optional(Type.String()),
  /** Context (HTTP method, route and status; changed fields). Never a password or token. */
  detail: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type AuditEntry = Static<typeof AuditEntry>;
export const AuditPage = Page(AuditEntry);

export const AuditQuery = Type.Object(
  {
    /** A user name, device id or token id (matches the actor's name or id). */
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** An action, or a prefix ending in `.` or `*` (`user.` matches `user.create`, `user.delete`). */
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+\\*?$' })),
    /** The target's id. */
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    outcome: Type.Optional(AuditOutcome),
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    ...Paging,
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;
