// Issue 10, a broker outage with the kafkajs adapter (the default client), at the bus: the
// broker stopped for 20 s, or killed with SIGKILL and started again. Meanwhile every publish
// settles within 6 s (accepted, or `unavailable` with retry_after_s, which the gateway answers
// as 503 + Retry-After); nothing ends the process (no unhandled rejection, no uncaught
// exception); a subscription made while the broker is down waits for it instead of failing;
// once the broker is back both consumers (the one from before the outage and the one that
// subscribed during it) have joined and every accepted record is consumed by each.
//
// Before the adapter handled it, a subscribe() during an outage rejected once kafkajs's
// connection retries ran out (about 10-20 s): in `attune all` the speech worker, which opens its
// models before it subscribes, did so tens of seconds after the process listened, so a broker
// outage then failed the start of a process already serving ingest and the process exited
// (the fault suite's broker scenarios, on a loaded machine). A consumer kafkajs gives up on
// (it crashed on an error kafkajs does not retry, e.g. "Failed to find group coordinator"
// while the broker goes away) is replaced by the adapter (bus/kafka.ts).
//
// The test stops a broker, so it starts a PRIVATE one with infra/kafka/kafka.sh (never the
// shared broker of the other tests): KAFKAJS_OUTAGE_PORT / KAFKAJS_OUTAGE_CONTROLLER_PORT /
// KAFKAJS_OUTAGE_DATA_DIR (defaults 19892, 19893, a directory under the OS temp dir; not the
// ports of bus/broker-stop.kafka.test.ts, bus/kafka-platformatic-outage.kafka.test.ts or
// test/faults.kafka.test.ts, which may run at the same time). Skipped where the other Kafka
// tests are skipped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KAFKA_SCRIPT, kafkaOrSkip, startLocalKafka } from '../test/services.js';
import { silentLogger } from '../lib/log.js';
import { isAttuneError } from '../lib/errors.js';
import { createKafkaBus } from './kafka.js';
import { withPublishTimeout } from './publish-timeout.js';

const dataDir = process.env.KAFKAJS_OUTAGE_DATA_DIR ?? join(tmpdir(), 'attune-kafkajs-outage-kafka');
const env = {
  ...process.env,
  KAFKA_PORT: process.env.KAFKAJS_OUTAGE_PORT ?? '19892',
  KAFKA_CONTROLLER_PORT: process.env.KAFKAJS_OUTAGE_CONTROLLER_PORT ?? '19893',
  KAFKA_DATA_DIR: dataDir,
};
const OUTAGE_MS = 20_000;

function kafkaSh(cmd: 'stop'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [KAFKA_SCRIPT, cmd], { env, timeout: 60_000 }, (err) => (err ? reject(err) : resolve()));
  });
}

/** SIGKILL of the private broker (its pid from its own data dir), resolved once it is gone. */
async function killBroker(): Promise<void> {
  const pid = Number(readFileSync(join(dataDir, 'kafka.pid'), 'utf8').trim());
  assert.ok(pid > 0, 'the private broker has a pid file');
  process.kill(pid, 'SIGKILL');
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// What would end an Attune process: recorded instead (the listeners keep the test process alive
// to report them).
const fatal: string[] = [];
const onRejection = (err: unknown) => void fatal.push(`unhandled rejection: ${(err as Error)?.message ?? String(err)}`);
const onException = (err: Error) => void fatal.push(`uncaught exception: ${err?.message ?? String(err)}`);
before(() => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
});
after(async () => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  await kafkaSh('stop').catch(() => undefined);
});

interface Publish {
  at: number;
  ms: number;
  keys: string[];
  error?: unknown;
}

for (const fault of ['stopped for 20 s', 'killed with SIGKILL and restarted'] as const) {
  test(`kafkajs, broker ${fault}: publishes settle within 6 s (503-able while down), nothing ends the process, a subscription made meanwhile waits, both consumers consume every accepted record`, { timeout: 240_000 }, async (t) => {
    if (!(await kafkaOrSkip(t))) return;
    const brokers = await startLocalKafka({ env });
    fatal.length = 0;
    const id = randomUUID().slice(0, 8);
    const topic = `outage.${id}`;
    const bus = withPublishTimeout(
      await createKafkaBus({ client: 'kafkajs', brokers, clientId: 'attune-bus-outage', log: silentLogger, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, retryBackoffMs: 100 }),
      5_000,
    );
    let publishing = true;
    try {
      await bus.ensureTopics([{ topic, partitions: 6 }]);
      const consumed = new Set<string>();
      const sub = await bus.subscribe({
        groupId: `outage-${id}`,
        topics: [topic],
        eachBatch: async (b) => {
          for (const r of b.records) consumed.add(r.key);
          await sub.commit(b.topic, b.partition, (BigInt(b.records[b.records.length - 1].offset) + 1n).toString());
        },
      });
      // A steady producer, as the gateway is under load: 5 records every 200 ms.
      const publishes: Publish[] = [];
      let n = 0;
      const producer = (async () => {
        while (publishing) {
          const keys = Array.from({ length: 5 }, () => `r-${n++}`);
          const began = performance.now();
          const p: Publish = { at: Date.now(), ms: 0, keys };
          try {
            await bus.publish(topic, keys.map((key) => ({ key, value: Buffer.from(key) })));
          } catch (err) {
            p.error = err;
          }
          p.ms = performance.now() - began;
          publishes.push(p);
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const acked = () => publishes.filter((p) => p.error === undefined).flatMap((p) => p.keys);
      // On a time-out, say what is missing (which accepted records the consumers never saw).
      const missing = (seen: Set<string>) => {
        const m = acked().filter((k) => !seen.has(k));
        return `${m.length} of ${acked().length} accepted records not consumed (first ${m.slice(0, 5).join(', ')}; last consumed ${[...seen].at(-1)})`;
      };
      const waitUntil = async (what: string, check: () => boolean, timeoutMs: number, state = () => missing(consumed)) => {
        const deadline = Date.now() + timeoutMs;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${state()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await waitUntil('records consumed before the fault', () => acked().length >= 20 && acked().every((k) => consumed.has(k)), 30_000);

      const downAt = Date.now();
      if (fault === 'stopped for 20 s') await kafkaSh('stop');
      else await killBroker();
      // A second group subscribes while the broker is away (as a worker that opens its models
      // first does, late in the start): it must wait for the broker, not reject.
      const lateConsumed = new Set<string>();
      let lateSettled: string | null = null;
      const late = bus
        .subscribe({
          groupId: `outage-late-${id}`,
          topics: [topic],
          eachBatch: async (b) => {
            for (const r of b.records) lateConsumed.add(r.key);
          },
        })
        .then(
          (s) => ((lateSettled = `joined after ${((Date.now() - downAt) / 1000).toFixed(1)} s`), s),
          (err: Error) => ((lateSettled = `rejected: ${err.message}`), null),
        );
      await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now()))); // the outage itself
      const lateWhileDown = lateSettled;
      await startLocalKafka({ env });
      const backAt = Date.now();
      const ackedAtBack = acked().length;
      await waitUntil('a publish accepted after the restart', () => acked().length > ackedAtBack, 30_000);
      const firstAckMs = Date.now() - backAt;
      await waitUntil('every accepted record consumed after the restart', () => acked().length > ackedAtBack + 20 && acked().every((k) => consumed.has(k)), 90_000);
      const caughtUpMs = Date.now() - backAt;
      const lateSub = await late;
      assert.equal(lateWhileDown, null, 'the subscription made during the outage was still waiting when the broker came back');
      assert.ok(lateSub, `the subscription made during the outage: ${lateSettled}`);
      await waitUntil('every accepted record consumed by the group that subscribed during the outage', () => acked().every((k) => lateConsumed.has(k)), 90_000, () => missing(lateConsumed));
      publishing = false;
      await producer;

      const during = publishes.filter((p) => p.at >= downAt && p.at < backAt);
      const refused = during.filter((p) => p.error !== undefined);
      const slowest = Math.max(...publishes.map((p) => p.ms));
      t.diagnostic(
        `broker ${fault}: ${during.length} publishes while down (${refused.length} refused), slowest publish ${slowest.toFixed(0)} ms; ` +
          `first accepted ${(firstAckMs / 1000).toFixed(1)} s and every accepted record consumed ${(caughtUpMs / 1000).toFixed(1)} s after the broker was back; the subscription made meanwhile ${lateSettled}`,
      );
      assert.deepEqual(fatal, [], 'nothing that ends a process');
      assert.ok(refused.length > 0, 'a publish was refused while the broker was down: the fault happened');
      for (const p of publishes) {
        assert.ok(p.ms <= 6_000, `a publish settled after ${p.ms.toFixed(0)} ms`);
        if (p.error === undefined) continue;
        assert.ok(isAttuneError(p.error) && p.error.code === 'unavailable', `refused as unavailable: ${(p.error as Error).message}`);
        assert.equal((p.error.details?.[0] as { retry_after_s?: number } | undefined)?.retry_after_s, 5, 'with a Retry-After');
      }
      assert.deepEqual(acked().filter((k) => !consumed.has(k)), [], 'every accepted record consumed');
      await Promise.all([sub.stop(), lateSub.stop()]);
    } finally {
      publishing = false;
      await bus.close();
    }
  });
}
