export { enroll, requestEnrollment, enrollUrl, EnrollmentAttemptError, ENROLL_PATH, type EnrollOptions } from './enroll.js';
