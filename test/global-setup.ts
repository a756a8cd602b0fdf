import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Builds dist/ once, for the tests that run the compiled CLIs and main.js as a user would. */
export default function buildOnce(): void {
  const root = path.resolve(__dirname, '..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
