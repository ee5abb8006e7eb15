// Every benchmark run writes one result file through this module (format: bench/README.md):
//
//   bench/results/<name>-<UTC time to the second, ISO 8601 basic>-<6 random hex>.json
//
// created exclusively (flag 'wx'), so a run never replaces an earlier one, whatever the day or
// minute. The file holds the machine (with the load average when the run started and ended,
// because on a shared machine that is what decides whether a figure means anything), the git
// commit and uncommitted paths, the command and options, every run's raw value of every
// metric, and each metric's true median, min and max.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GitState, type Machine, gitState, loadAverage, machine } from './machine.js';
import { MIN_RUNS_FOR_MEDIAN, type Summary, round, summarise } from './stats.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * bench/results/, where every run of record goes. BENCH_RESULTS_DIR points elsewhere only while
 * developing a benchmark itself (runs of one or two rounds that measure nothing).
 */
export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(REPO_ROOT, 'bench', 'results');
/** Bumped when a field changes meaning, so old files can still be read correctly. */
export const RESULT_FORMAT = 1;

export interface Metric extends Summary {
  unit: string;
  /** Which way is better: a reader comparing files needs to know. */
  better: 'higher' | 'lower';
}

export interface ResultFile {
  format: number;
  benchmark: string;
  description: string;
  started_at: string;
  finished_at: string;
  command: string;
  options: Record<string, unknown>;
  git: GitState;
  machine: Machine & { load_average_start: number[]; load_average_end: number[] };
  metrics: Record<string, Metric>;
  details: Record<string, unknown>;
}

/** `<name>-20261202T100724Z-1a2b3c.json`: sortable by time, no colons (portable), unique by its random tag. */
export function resultFileName(name: string, at: Date, tag: string): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`benchmark name ${JSON.stringify(name)}: lower case, digits and dashes only`);
  const stamp = at.toISOString().slice(0, 19).replace(/[-:]/g, '') + 'Z';
  return `${name}-${stamp}-${tag}.json`;
}

/** The command line that ran this process, paths relative to the repository. */
function commandLine(): string {
  const script = process.argv[1] ? relative(REPO_ROOT, process.argv[1]) : '';
  return ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
}

export interface BenchRunOptions {
  /** What is measured, on what input: one or two sentences a reader of the file needs. */
  description: string;
  /** The benchmark's parameters as run (runs, sizes, models...). */
  options?: Record<string, unknown>;
  /** Where to write; default RESULTS_DIR. Tests pass a temporary directory. */
  dir?: string;
  /** For tests: the command recorded, instead of this process's. */
  command?: string;
}

/**
 * One run of a benchmark: created when it starts (the machine's load then is recorded),
 * given each metric's per-run values, written once at the end.
 */
export class BenchRun {
  readonly startedAt = new Date();
  private readonly loadAtStart = loadAverage();
  private readonly metrics: Record<string, Metric> = {};
  private written: string | null = null;

  constructor(
    readonly name: string,
    private readonly opts: BenchRunOptions,
  ) {
    resultFileName(name, this.startedAt, 'x'); // fail at the start, not after the runs, on a bad name
  }

  /** Records a metric's individual runs (in the order made) and returns its summary. */
  metric(name: string, runs: readonly number[], unit: string, better: 'higher' | 'lower'): Metric {
    if (this.metrics[name]) throw new Error(`metric ${name} recorded twice`);
    const m: Metric = { unit, better, ...summarise(runs) };
    this.metrics[name] = m;
    return m;
  }

  /** Writes the result file (never over an existing one) and returns its path. */
  write(details: Record<string, unknown> = {}): string {
    if (this.written) throw new Error(`${this.name} was already written to ${this.written}`);
    const result: ResultFile = {
      format: RESULT_FORMAT,
      benchmark: this.name,
      description: this.opts.description,
      started_at: this.startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      command: this.opts.command ?? commandLine(),
      options: this.opts.options ?? {},
      git: process.env.BENCH_CODE_COMMIT ? baselineGitState(process.env.BENCH_CODE_COMMIT) : gitState(REPO_ROOT),
      machine: { ...machine(), load_average_start: this.loadAtStart, load_average_end: loadAverage() },
      metrics: this.metrics,
      details,
    };
    const dir = this.opts.dir ?? RESULTS_DIR;
    mkdirSync(dir, { recursive: true });
    const body = JSON.stringify(result, null, 2) + '\n';
    for (;;) {
      const path = join(dir, resultFileName(this.name, this.startedAt, randomBytes(3).toString('hex')));
      try {
        writeFileSync(path, body, { flag: 'wx' });
        this.written = path;
        return path;
      } catch (err) {
        // Same second and the same 24-bit tag: draw another tag; anything else is a real failure.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }
}

/** A baseline run (bench/lib/baseline.ts): a git archive of that commit, measured by the current bench/. */
function baselineGitState(commit: string): GitState & { code: string } {
  return { commit, uncommitted: [], code: 'baseline: git archive of this commit, measured by the bench/ of the run that started it' };
}

/** "median 123.4× (min 110.2×, max 130.9×, 7 runs)", flagged when there are too few runs to quote. */
export function describeMetric(m: Summary, digits = 1, unit = ''): string {
  const warn = m.quotable ? '' : ` — only ${m.n} run(s), fewer than ${MIN_RUNS_FOR_MEDIAN}: not a median to quote`;
  const v = (x: number) => `${round(x, digits)}${unit}`;
  return `median ${v(m.median)} (min ${v(m.min)}, max ${v(m.max)}, ${m.n} runs)${warn}`;
}

/** Reads a run count from the command line: a positive integer, default `fallback` (≥ MIN_RUNS_FOR_MEDIAN). */
export function runsArg(value: string | undefined, fallback: number): number {
  if (fallback < MIN_RUNS_FOR_MEDIAN) throw new Error(`a benchmark's default run count must be at least ${MIN_RUNS_FOR_MEDIAN}`);
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`runs must be a positive integer, got ${value}`);
  if (n < MIN_RUNS_FOR_MEDIAN) console.warn(`${n} run(s): fewer than ${MIN_RUNS_FOR_MEDIAN}; the result file marks its medians as not quotable`);
  return n;
}

/** For a benchmark's last line: where the result went, relative to the repository (a baseline checkout's runs land in ours). */
export function relativeResultPath(path: string): string {
  if (dirname(path) === RESULTS_DIR.replace(/\/$/, '') && RESULTS_DIR.endsWith(join('bench', 'results'))) return join('bench', 'results', basename(path));
  return relative(REPO_ROOT, path);
}
