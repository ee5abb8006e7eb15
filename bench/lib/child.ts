// Runs a benchmark part in a child process (so it can be pinned to a core, or start from a clean
// heap), echoes its output indented, and resolves with the object on its `RESULT {json}` line.
// A child that fails rejects with the end of its stderr in the message, so the failure a result
// file records says why (a bare "exited with 1" once left a run's failure unexplained).
import { spawn } from 'node:child_process';
import { REPO_ROOT } from './results.js';

/** How much of a failed child's stderr its error keeps. */
const STDERR_TAIL_CHARS = 2000;

/** `cwd` (default the repository) and extra environment variables, e.g. to run a baseline checkout. */
export function runChild(command: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { cwd: opts.cwd ?? REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let result: any = null;
    let buffered = '';
    let stderrTail = '';
    p.stderr.on('data', (d: Buffer) => {
      process.stderr.write(d);
      stderrTail = (stderrTail + d.toString()).slice(-STDERR_TAIL_CHARS);
    });
    p.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        else console.log('  ' + line);
      }
    });
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (code === 0 && result) return resolve(result);
      const why = stderrTail.trim() ? `: ${stderrTail.trim()}` : '';
      reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}${code === 0 ? ' without a RESULT line' : ''}${why}`));
    });
  });
}
