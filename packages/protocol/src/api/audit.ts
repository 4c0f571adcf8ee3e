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
  /** Why a `denied` or `failed` request was refused: the API error it answered with. */
  reason: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  /**
   * The task the request started (or cancelled, or retried into), as it stands now: the
   * request's own outcome says only that the task was accepted. Read when the log is read;
   * the entry itself is never rewritten. Absent when the task is gone (pruned).
   */
  task: Type.Optional(Type.Object({
    id: Type.String(),
    state: Type.String(),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    /** The outcome of a result that came after the task was final (typically after timed_out). */
    lateOutcome: Type.Optional(Type.String()),
  })),
});
export type AuditEntry = Static<typeof AuditEntry>;
export const AuditPage = Page(AuditEntry);

const AuditFilters = {
  /** A user name, device id or token id (matches the actor's name or id). */
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** An action, or a prefix ending in `.` or `*` (`user.` matches `user.create`, `user.delete`). */
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+\\*?$' })),
  /** Actions to leave out, comma-separated, each an action or a prefix as above (`login.,logout` hides sign-ins). */
  exclude: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._-]+\\*?(,[A-Za-z0-9._-]+\\*?)*$' })),
  /** The target's id, or its name as recorded (a device's name, a user name). */
  target: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  outcome: Type.Optional(AuditOutcome),
  since: Type.Optional(Timestamp),
  until: Type.Optional(Timestamp),
};

export const AuditQuery = Type.Object({ ...AuditFilters, ...Paging }, { additionalProperties: false });
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditExportFormat = Type.Union([Type.Literal('csv'), Type.Literal('json')]);
export type AuditExportFormat = Static<typeof AuditExportFormat>;

/** `GET /audit/export`: every entry the filters match, newest first, streamed as CSV or JSON. */
export const AuditExportQuery = Type.Object({ ...AuditFilters, format: Type.Optional(AuditExportFormat) }, { additionalProperties: false });
export type AuditExportQuery = Static<typeof AuditExportQuery>;
