/** Entry point of the `pallas` binary (bin/pallas.js imports this file). */
import { processIo } from './io.js';
import { runCli } from './program.js';

// `pallas devices ls | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await runCli(process.argv.slice(2), processIo());
