import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const workdir = mkdtempSync(path.join(tmpdir(), 'people-graph-bench-'));

describe('npm run bench -- --quick', () => {
  afterAll(() => rmSync(workdir, { recursive: true, force: true }));

  // Proves the harness works end to end (seed, service, baseline, autocannon, report); it asserts
  // the report's shape and that no request failed, never any timing.
  it('measures every workload against the baseline, and the read workloads on Apollo alone, and writes the report', () => {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.bench.json'], {
      cwd: root,
    });
    const out = path.join(workdir, 'RESULTS.md');
    execFileSync(
      process.execPath,
      [
        path.join(root, 'build/bench/bench/run.js'),
        '--quick',
        '--warmup',
        '1',
        '--database-url',
        `sqlite:${path.join(workdir, 'bench.sqlite')}`,
        '--out',
        out,
        '--apollo-alone',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 },
    );
    const report = readFileSync(out, 'utf8');
    for (const workload of ['people(first: 25)', 'person(email)', 'createPerson', '_entities x 100']) {
      const row = report.split('\n').find((line) => line.startsWith(`| ${workload} |`));
      expect(row, workload).toBeDefined();
      const cells = (row as string).split('|').map((cell) => cell.trim());
      expect(Number(cells[2]), `${workload} service req/s`).toBeGreaterThan(0);
      expect(Number(cells[4]), `${workload} baseline req/s`).toBeGreaterThan(0);
      expect(Number(cells[6]), `${workload} ratio`).toBeGreaterThan(0);
      expect(cells[7], `${workload} errors`).toBe('0 / 0');
      if (workload === 'people(first: 25)' || workload === 'person(email)') {
        expect(Number(cells[8]), `${workload} Apollo alone req/s`).toBeGreaterThan(0);
        expect(Number(cells[9]), `${workload} Apollo alone / baseline`).toBeGreaterThan(0);
        expect(Number(cells[10]), `${workload} service / Apollo alone`).toBeGreaterThan(0);
        expect(cells[11], `${workload} Apollo alone errors`).toBe('0');
      } else {
        // Apollo alone answers only the read workloads.
        expect(cells.slice(8, 12), workload).toEqual(['-', '-', '-', '-']);
      }
    }
    expect(report).toContain('1 s per round after 1 s of unmeasured warm-up');
    expect(report).toContain('service and baseline (and Apollo alone, on the read workloads) alternating');
    expect(report).toMatch(/Page latency at N = \d+: first page p50/);
    expect(report).toMatch(/Peak RSS of the service at N = \d+ under load: \d+ MB/);
  }, 300_000);
});
