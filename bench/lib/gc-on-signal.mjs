// Preloaded into the benchmark's manager process (`--expose-gc --import <this file>`), never in
// production: on SIGUSR2 it runs a full garbage collection, so the benchmark reads the manager's
// memory with no garbage left in it. Node keeps SIGUSR1 for the inspector; SIGUSR2 is free.
process.on('SIGUSR2', () => {
  // Two passes: the first one runs finalizers whose objects the second one frees.
  globalThis.gc?.();
  globalThis.gc?.();
});
