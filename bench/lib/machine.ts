// What a benchmark result ran on, recorded with every result file.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';

/** 1, 5 and 15 minute load averages, two decimals. On 2 shared cores, above ~1 means someone else was running. */
export function loadAverage(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

export interface Machine {
  cpu: string;
  cores: number;
  memory_gib: number;
  os: string;
  node: string;
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
  };
}

export interface GitState {
  commit: string | null;
  /** Paths changed since the commit (`git status --porcelain`): the code measured may differ from the commit's. */
  uncommitted: string[];
}

/** The commit the benchmark ran on, and what was uncommitted; nulls outside a git checkout. */
export function gitState(cwd: string): GitState {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, uncommitted: status.split('\n').filter((l) => l.trim().length > 0) };
  } catch {
    return { commit: null, uncommitted: [] };
  }
}
