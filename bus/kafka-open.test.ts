// bus/kafka-open.ts: a Kafka bus that fails to open leaves nothing behind. Before, a failed
// @platformatic/kafka open kept its producer and admin retrying the brokers in the background: a
// process that gave up never exited (still running after 60 s), and a starting process that
// waits for Kafka gathered one more pair of clients with every try.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Opens the bus on a port nothing listens on, in a child; resolves with its exit and what it printed. */
function openUnreachable(client: string): Promise<{ code: number | null; out: string; killed: boolean }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { createKafkaBus } from './bus/kafka-open.ts';
       import { silentLogger } from './lib/log.ts';
       const opened = await createKafkaBus({ brokers: ['127.0.0.1:1'], clientId: 'open-test', log: silentLogger, client: ${JSON.stringify(client)} }).then(() => true, () => false);
       console.log(JSON.stringify({ opened }));`,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  // A guard, not a wait: the child is expected to exit by itself well before it.
  let killed = false;
  const guard = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, 45_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, out, killed });
    }),
  );
}

for (const client of ['platformatic', 'kafkajs']) {
  test(`${client}: an open that fails rejects, and the process then exits by itself (no client left retrying)`, async () => {
    const r = await openUnreachable(client);
    assert.equal(r.killed, false, `still running 45 s after it started:\n${r.out}`);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(JSON.parse(r.out.trim().split('\n').at(-1)!), { opened: false });
  });
}
