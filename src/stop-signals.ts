/** Stops the process, exit 0, on a signal that arrives before the service is built. */
function stopBeforeStart(signal: NodeJS.Signals): void {
  // Nothing was served, so nothing drains; a migration in progress rolls back with its connection.
  process.stderr.write(`people-graph stopped by ${signal} before it had started\n`);
  process.exit(0);
}

let onSignal: (signal: NodeJS.Signals) => void = stopBeforeStart;

// Caught from the moment this module loads (main.ts imports it before the service's modules,
// which take a second or so to load), by one listener per signal for the life of the process:
// a signal that arrived while one listener was removed and the next not yet added would be
// lost, and the process would go on serving.
process.on('SIGTERM', (signal) => onSignal(signal));
process.on('SIGINT', (signal) => onSignal(signal));

/** What SIGTERM and SIGINT do from now on; until this is called, they stop the process at once. */
export function onStopSignal(handler: (signal: NodeJS.Signals) => void): void {
  onSignal = handler;
}
