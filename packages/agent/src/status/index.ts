export { StatusReporter, type StatusReporterOptions } from './status-reporter.js';
