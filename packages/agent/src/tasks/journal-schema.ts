/**
 * One line of the task journal, as a TypeBox schema: the source of its checker
 * (`src/checks/generated.ts`, made from it at build time). The running agent does not import
 * this module (only to explain a refused record): see `src/checks/`.
 */
import { ArtifactGrant, TaskId, TaskOperation, TaskResult } from '@pallas/protocol';
import Type, { type Static } from 'typebox';

/**
 * Times are wall-clock epoch ms: `deadlineAt` must survive a restart, and only the wall clock
 * does (see docs/agent.md, "Tasks").
 */
export const JournalRecord = Type.Union([
  Type.Object({
    type: Type.Literal('start'), taskId: TaskId, operation: TaskOperation, deadlineAt: Type.Number(), at: Type.Number(),
    /** The task's artifact grants, so a task resumed after a restart can still download. */
    artifacts: Type.Optional(Type.Array(ArtifactGrant)),
  }),
  Type.Object({ type: Type.Literal('result'), taskId: TaskId, result: TaskResult }),
  Type.Object({ type: Type.Literal('acked'), taskId: TaskId, at: Type.Number() }),
]);
export type JournalRecord = Static<typeof JournalRecord>;
