// An Attune role in a child process, for the tests that need more than one process on shared
// engines (test/multi-process.kafka.test.ts, test/mesh-multi-process.test.ts): started through
// cli/main.ts with the given environment on top of the test's, resolved with its URL once it
// logs that it listens, rejected with its output if it exits first.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs `attune <commands[0]>`, then `attune <commands[1]>` … in one child (e.g. ['migrate',
 * 'api']: a single role does not migrate) and resolves with the URL it listens on. The child is
 * pushed to `children` at once, so the caller's after() can stop it whatever happens. A role
 * without HTTP (`worker`, `sink`) is waited for by `readyLog: 'metrics listening'` (with
 * ATTUNE_METRICS_PORT set; it logs that after its roles have started): the URL is then /metrics'.
 */
export function startAttuneProcess(commands: string[], env: Record<string, string>, children: ChildProcess[], readyLog = 'attune listening'): Promise<string> {
  const calls = commands.map((c) => `await m.main([${JSON.stringify(c)}]);`).join(' ');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then(async (m) => { ${calls} })`], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes(readyLog)) continue;
        try {
          resolve(String(JSON.parse(line).url).replace('0.0.0.0', '127.0.0.1'));
        } catch {
          /* a partial line: wait for the rest */
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`attune ${commands.join(' + ')} exited with ${code} before "${readyLog}":\n${err}\n${out.slice(-2000)}`)));
  });
}

/** Stops every child (SIGTERM) and resolves once each has exited. */
export async function stopAttuneProcesses(children: ChildProcess[]): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
}
