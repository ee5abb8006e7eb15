// Data at rest (issue 9): the real `attune` command on a fresh data directory, with the
// simulator's traffic through the embedded bus into chDB and PGlite, leaves a 0700 directory
// in which nothing (bus logs, offsets, chDB parts, PGlite files, the JWT secret) is open to
// group or others; a key file readable by others (0644) or shorter than 32 bytes refuses to
// start with one coded line naming the file; an existing 0755 data directory is closed to 0700.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bases: string[] = [];
after(() => {
  for (const b of bases) rmSync(b, { recursive: true, force: true });
});

function freshBase(): string {
  // The temporary base itself is made 0755, as a shared parent would be.
  const base = mkdtempSync(join(tmpdir(), 'attune-rest-'));
  chmodSync(base, 0o755);
  bases.push(base);
  return base;
}

/** Environment for an embedded `attune` (no servers, no JWT_SECRET: the data dir holds the key). */
function env(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ATTUNE_DATA_DIR: dataDir, ...extra };
  for (const k of ['DATABASE_URL', 'CLICKHOUSE_URL', 'KAFKA_BROKERS', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL', 'SCHEMA_REGISTRY_URL']) delete e[k];
  return e;
}

function attune(args: string[], e: NodeJS.ProcessEnv) {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(${JSON.stringify(args)}))`], {
    cwd: root,
    env: e,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function runToExit(args: string[], e: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = attune(args, e);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, stdout, stderr };
}

function walk(dir: string, out: { path: string; mode: number; dir: boolean }[] = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isSymbolicLink()) continue;
    out.push({ path, mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) walk(path, out);
  }
  return out;
}

function nonEmptyLogs(dir: string): number {
  try {
    return walk(dir).filter((f) => f.path.endsWith('.log') && statSync(f.path).size > 0).length;
  } catch {
    return 0;
  }
}

test('a fresh data directory is 0700 and nothing under it is open to group or others after traffic', { timeout: 180_000 }, async () => {
  const dataDir = join(freshBase(), 'data');
  const child = attune(['all'], env(dataDir, { ATTUNE_SIMULATE: '1', ATTUNE_SIM_DEVICES: '2' }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  // Until the simulator's readings are in the bus logs (polled, with a deadline).
  const deadline = Date.now() + 120_000;
  while (nonEmptyLogs(join(dataDir, 'bus')) < 2) {
    if (child.exitCode !== null) assert.fail(`attune exited ${child.exitCode}:\n${err}\n${out.slice(-2000)}`);
    if (Date.now() > deadline) assert.fail(`no bus traffic:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);

  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  const entries = walk(dataDir);
  const files = entries.filter((e) => !e.dir);
  // What must be there: bus logs, the secret, chDB's and PGlite's files.
  assert.ok(files.some((f) => f.path.includes('/bus/') && f.path.endsWith('.log')));
  assert.ok(files.some((f) => f.path.endsWith('/secrets/jwt-hs256.key')));
  assert.ok(files.filter((f) => f.path.includes('/clickhouse/')).length > 10, 'chDB files');
  assert.ok(files.filter((f) => f.path.includes('/postgres/')).length > 10, 'PGlite files');
  const open = entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`);
  assert.deepEqual(open, [], `open to group or others:\n${open.slice(0, 20).join('\n')}`);
  for (const d of entries.filter((e) => e.dir)) assert.equal(d.mode, 0o700, d.path);
  const modes = new Map<number, number>();
  for (const f of files) modes.set(f.mode, (modes.get(f.mode) ?? 0) + 1);
  // Regular data files are 0600 (an executable bit for the owner alone would be tolerable, but none is expected).
  assert.deepEqual([...modes.keys()], [0o600], `file modes: ${JSON.stringify(Object.fromEntries([...modes].map(([m, n]) => [m.toString(8), n])))}`);
});

test('a key file readable by others refuses to start, naming the file', { timeout: 120_000 }, async () => {
  const dataDir = join(freshBase(), 'data');
  mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const key = join(dataDir, 'secrets', 'jwt-hs256.key');
  writeFileSync(key, 'k'.repeat(64) + '\n');
  chmodSync(key, 0o644);
  const r = await runToExit(['all'], env(dataDir, { ATTUNE_SIMULATE: '0' }));
  assert.equal(r.code, 2, r.stderr + r.stdout.slice(-1000));
  const line = r.stderr.trim();
  assert.equal(line.split('\n').length, 1, line);
  assert.match(line, /^attune: insecure_permissions: key file .*jwt-hs256\.key is readable by group or others \(mode 0644\)/);
  assert.doesNotMatch(r.stdout, /attune listening/);
});

test('a key file shorter than 32 bytes refuses to start', async () => {
  const dataDir = join(freshBase(), 'data');
  mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  const key = join(dataDir, 'secrets', 'jwt-hs256.key');
  writeFileSync(key, 'short-key-31-bytes-long-xxxxxxx\n', { mode: 0o600 });
  const r = await runToExit(['token', '--user', 'u1', '--org', 'o1'], env(dataDir));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^attune: weak_key: key file .*jwt-hs256\.key holds 31 bytes, fewer than 32/);
  assert.equal(r.stdout, '');
});

test('an existing 0755 data directory is closed to 0700 at startup', async () => {
  const dataDir = join(freshBase(), 'data');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o755);
  const r = await runToExit(['token', '--user', 'u1', '--org', 'o1'], env(dataDir));
  assert.equal(r.code, 0, r.stderr);
  // The token alone on standard output (TOKEN=$(attune token …)); the warning on standard error.
  assert.match(r.stdout, /^ey[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dataDir, 'secrets', 'jwt-hs256.key')).mode & 0o777, 0o600);
  assert.match(r.stderr, /now 0700/);
});

test('token --scopes all signs every scope Attune knows; other names are kept as given, with a warning', async () => {
  const { Scopes } = await import('../lib/principal.js');
  const dataDir = join(freshBase(), 'data');
  const r = await runToExit(['token', '--user', 'u1', '--org', 'o1', '--scopes', 'all extra:scope'], env(dataDir));
  assert.equal(r.code, 0, r.stderr);
  const payload = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1]!, 'base64url').toString('utf8')) as { scope?: string; scopes?: string[] };
  const signed = new Set(Array.isArray(payload.scopes) ? payload.scopes : String(payload.scope ?? '').split(' '));
  for (const s of Object.values(Scopes)) assert.ok(signed.has(s), `missing ${s}: ${[...signed].join(' ')}`);
  assert.ok(signed.has('extra:scope'));
  assert.ok(!signed.has('all'));
  assert.match(r.stderr, /no route checks extra:scope \(signed as given/, 'a name no route checks (a typo, most likely) is pointed out');
});
