// A SIGTERM (or SIGINT) while `attune all` is still starting: before it listens it exits at
// once (status 0); once it listens it stops cleanly when the start has finished (exit 0 after
// 'shutting down'), as a SIGTERM later would. Before, the handlers were installed only after
// the start, which ends after the process listens (the workers join their groups last), so a
// signal in that span (a rolling deploy, a supervisor's stop) killed the process outright,
// without leaving its consumer groups or closing its stores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function startAll(dataDir: string): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', ATTUNE_DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex'), ATTUNE_SIMULATE: '0', LOG_LEVEL: 'info' };
  // The embedded default: no Kafka, no PostgreSQL server.
  for (const name of ['KAFKA_BROKERS', 'DATABASE_URL', 'CLICKHOUSE_URL', 'ATTUNE_BUS']) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['all']))`], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, output: () => out, exited };
}

/** Resolves once the process's output has a line containing `text` (event-driven, with a deadline). */
function lineWith(child: ChildProcess, output: () => string, text: string, ms = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${text}" in ${ms} ms:\n${output().slice(-2000)}`)), ms);
    const check = () => {
      if (!output().includes(text)) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve();
    };
    child.stdout!.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      if (!output().includes(text)) reject(new Error(`exited before "${text}":\n${output().slice(-2000)}`));
    });
    check();
  });
}

test('a SIGTERM before the server listens exits at once, with status 0 (nothing was accepted yet)', { timeout: 180_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-signals-'));
  try {
    const { child, output, exited } = startAll(dataDir);
    // 'store connected' comes from the start itself, before the server listens.
    await lineWith(child, output, 'store connected');
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const out = output();
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out.slice(-2000));
    assert.match(out, /signal before the server listened: exiting/);
    assert.ok(!out.includes('attune listening'), 'it never listened');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a SIGTERM as soon as it listens (its workers may still be joining) stops it cleanly: exit 0 after shutting down, not killed', { timeout: 180_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'attune-signals-'));
  try {
    const { child, output, exited } = startAll(dataDir);
    await lineWith(child, output, 'attune listening');
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const out = output();
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out.slice(-2000));
    assert.match(out, /"signal":"SIGTERM","msg":"shutting down"/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
