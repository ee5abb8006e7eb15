// Issue 10: after a kill -9 of `attune all` (Kafka), how soon do 202s resume once a new
// process is started, and how soon does the new process take over the worker groups?
// Dev-only measurement (not a test): KAFKA_BROKERS must name a broker you may use.
//   KAFKA_BROKERS=127.0.0.1:19592 node --import tsx scripts/measure/crash-restart.ts (from the repository root)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { createAuthenticator } from '../../http/auth.js';

const brokers = process.env.KAFKA_BROKERS;
if (!brokers) throw new Error('KAFKA_BROKERS is required');
const secret = randomBytes(32).toString('hex');
const auth = createAuthenticator({ secret, publicKey: null, issuer: 'attune', audience: 'attune-api' });
const dataDir = mkdtempSync(join(tmpdir(), 'attune-crash-'));
const prefix = `crash-${randomUUID().slice(0, 8)}.`;

function start(): { child: ChildProcess; listening: Promise<{ url: string; at: number }>; joined: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import('./cli/main.ts').then((m) => m.main(['all']))`], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'debug', ATTUNE_DATA_DIR: dataDir, KAFKA_BROKERS: brokers!, ATTUNE_TOPIC_PREFIX: prefix, JWT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let onListen!: (v: { url: string; at: number }) => void;
  let onJoined!: (v: number) => void;
  const listening = new Promise<{ url: string; at: number }>((r) => (onListen = r));
  const joined = new Promise<number>((r) => (onJoined = r));
  let assignedGroups = 0;
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      if (line.includes('attune listening')) onListen({ url: String(JSON.parse(line).url), at: performance.now() });
      if (line.includes('bus partitions assigned')) {
        const l = JSON.parse(line);
        if (String(l.group).includes('readings-sink') || String(l.group).includes('coherence')) {
          if (++assignedGroups >= 2) onJoined(performance.now());
        }
      }
    }
  });
  return { child, listening, joined };
}

async function sync(url: string, token: string): Promise<number> {
  try {
    const res = await fetch(`${url}/v1/devices/dev-crash/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ readings: [{ timestamp: Date.now() - 2000, hr: 70, rr_intervals_ms: [850] }] }),
      signal: AbortSignal.timeout(6000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

const token = auth.sign({ userId: 'u1', orgId: 'o1', scopes: ['write:devices', 'write:readings'], ttlSeconds: 3600 });
const t0 = performance.now();
const first = start();
const l1 = await first.listening;
console.log(`first start: listening after ${((l1.at - t0) / 1000).toFixed(1)} s`);
await fetch(`${l1.url}/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'dev-crash' }) });
while ((await sync(l1.url, token)) !== 202) await new Promise((r) => setTimeout(r, 100));
const j1 = await first.joined;
console.log(`first start: worker groups assigned after ${((j1 - t0) / 1000).toFixed(1)} s`);
first.child.kill('SIGKILL');
await new Promise((r) => first.child.once('exit', r));
const t1 = performance.now();
const second = start();
const l2 = await second.listening;
let status = 0;
while ((status = await sync(l2.url, token)) !== 202) await new Promise((r) => setTimeout(r, 100));
const ok = performance.now();
console.log(`after kill -9 and restart: listening after ${((l2.at - t1) / 1000).toFixed(1)} s, first 202 after ${((ok - t1) / 1000).toFixed(1)} s`);
const j2 = await Promise.race([second.joined, new Promise<number>((r) => setTimeout(() => r(NaN), 90_000))]);
console.log(`after kill -9 and restart: worker groups assigned after ${((j2 - t1) / 1000).toFixed(1)} s`);
second.child.kill('SIGTERM');
await new Promise((r) => second.child.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
