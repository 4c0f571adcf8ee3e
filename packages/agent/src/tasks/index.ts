export { TaskJournal, JOURNAL_FILE, type JournalEntry, type TaskJournalOptions } from './journal.js';
export { TaskRunner, type TaskRunnerOptions, type TaskRunnerEvents, type TaskChannel } from './task-runner.js';
