import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const MAIN = path.resolve(__dirname, '../../dist/main.js');

export interface MainProcess {
  child: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern` (already seen or still to come). */
  waitForStdout(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
}

const ROOT = path.resolve(__dirname, '../..');

/**
 * Runs the compiled service (`node dist/main.js`, or another command that starts it, such as
 * `npm start`) as a user would, from the project root, with exactly `environment` on top of PATH.
 * Output is collected; nothing is mocked.
 */
export function spawnMain(
  environment: Record<string, string>,
  command: [string, ...string[]] = [process.execPath, MAIN],
): MainProcess {
  const [file, ...args] = command;
  const child = spawn(file, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (match: RegExpExecArray) => void }[] = [];
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });

  const check = () => {
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(stdout);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    check();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });

  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForStdout: (pattern) =>
      new Promise((resolve, reject) => {
        const match = pattern.exec(stdout);
        if (match) return resolve(match);
        waiters.push({ pattern, resolve });
        void exited.then((code) =>
          reject(new Error(`main.js exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`)),
        );
      }),
  };
}

/** Starts main.js on an ephemeral port and resolves once it listens, with its base URL. */
export async function startMain(
  environment: Record<string, string>,
  command?: [string, ...string[]],
): Promise<{ main: MainProcess; url: string; graphqlUrl: string }> {
  // Load tests send far more than the default rate limit; the limiter runs but never refuses.
  const main = spawnMain(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_SECOND: '1000000',
      RATE_LIMIT_BURST: '1000000',
      ...environment,
    },
    command,
  );
  const [, graphqlUrl] = await main.waitForStdout(/"url":"(http:\/\/[^"]+\/graphql)","msg":"people-graph listening"/);
  return { main, url: graphqlUrl.replace(/\/graphql$/, ''), graphqlUrl };
}

/** The admin token main.js prints on the first start of an empty database outside production. */
export async function printedAdminToken(main: MainProcess): Promise<string> {
  const [, token] = await main.waitForStdout(/^ {2}(pgk_[0-9A-Za-z]+)$/m);
  return token;
}

/** Sends `signal` (unless the process already ended) and resolves with its exit code or signal. */
function signalMain(main: MainProcess, signal: NodeJS.Signals): Promise<number | string> {
  if (main.child.exitCode === null && main.child.signalCode === null) main.child.kill(signal);
  return main.exited;
}

/** Sends SIGTERM (unless the process already ended) and resolves with its exit code. */
export function stopMain(main: MainProcess): Promise<number | string> {
  return signalMain(main, 'SIGTERM');
}

/** Cleanup after a test: kills the process if it still runs and waits until it is gone. */
export async function killMain(main: MainProcess | undefined): Promise<void> {
  if (main) await signalMain(main, 'SIGKILL');
}
