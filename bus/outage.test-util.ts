// The broker-outage scenario shared by the adapters' outage suites (bus/kafka-outage.kafka.test.ts
// for kafkajs, bus/kafka-platformatic-outage.kafka.test.ts for @platformatic/kafka): a PRIVATE
// broker (infra/kafka/kafka.sh on its own ports and data directory, never the shared broker of
// the other tests) stopped for 20 s or SIGKILLed and started again, while a steady producer
// publishes and a consumer group consumes. What each adapter must show is the same, so it is
// written once:
//   - every publish settles within 6 s: accepted, or `unavailable` with retry_after_s 5 (the
//     gateway's 503 + Retry-After);
//   - nothing ends the process (no unhandled rejection, no uncaught exception);
//   - optionally, a subscription made while the broker is down waits for it instead of failing;
//   - once the broker is back, every accepted record is consumed (by each group).
import { after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KAFKA_SCRIPT, startLocalKafka } from '../test/services.js';
import { isAttuneError } from '../lib/errors.js';
import type { Bus } from './types.js';

export const OUTAGE_MS = 20_000;
export const FAULTS = ['stopped for 20 s', 'killed with SIGKILL and restarted'] as const;
export type Fault = (typeof FAULTS)[number];

/** A private broker: `<envPrefix>_PORT`, `_CONTROLLER_PORT`, `_DATA_DIR` with these defaults. */
export function privateBroker(envPrefix: string, defaults: { port: number; name: string }) {
  const dataDir = process.env[`${envPrefix}_DATA_DIR`] ?? join(tmpdir(), defaults.name);
  const env = {
    ...process.env,
    KAFKA_PORT: process.env[`${envPrefix}_PORT`] ?? String(defaults.port),
    KAFKA_CONTROLLER_PORT: process.env[`${envPrefix}_CONTROLLER_PORT`] ?? String(defaults.port + 1),
    KAFKA_DATA_DIR: dataDir,
  };
  const stop = (): Promise<void> =>
    new Promise((resolve, reject) => {
      execFile('bash', [KAFKA_SCRIPT, 'stop'], { env, timeout: 60_000 }, (err) => (err ? reject(err) : resolve()));
    });
  /** SIGKILL of the private broker (its pid from its own data dir), resolved once it is gone. */
  const kill = async (): Promise<void> => {
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
  };
  return { env, dataDir, start: () => startLocalKafka({ env }), stop, kill };
}
export type PrivateBroker = ReturnType<typeof privateBroker>;

/**
 * What would end an Attune process, recorded instead (the listeners keep the test process alive
 * to report them). Registers the file's before/after hooks; the broker is stopped after all.
 */
export function recordFatal(broker: PrivateBroker): string[] {
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
    await broker.stop().catch(() => undefined);
  });
  return fatal;
}

interface Publish {
  at: number;
  ms: number;
  keys: string[];
  error?: unknown;
}

/** Polls `check` every 50 ms; a time-out says what is missing (`state`). */
export async function waitUntil(what: string, check: () => boolean, timeoutMs: number, state: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      const s = state();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${s ? `: ${s}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One outage of `broker` (already started) under `bus` (publishes bounded at 5 s). With
 * `lateSubscription`, a second group subscribes while the broker is down and must have waited
 * for it, then consume everything too.
 */
export async function outageScenario(t: TestContext, o: { bus: Bus; broker: PrivateBroker; fault: Fault; fatal: string[]; lateSubscription: boolean }): Promise<void> {
  const { bus, broker, fault, fatal } = o;
  fatal.length = 0;
  const id = randomUUID().slice(0, 8);
  const topic = `outage.${id}`;
  let publishing = true;
  let producer: Promise<void> | undefined;
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
    producer = (async () => {
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
    // On a time-out, say which accepted records a consumer never saw.
    const missing = (seen: Set<string>) => () => {
      const m = acked().filter((k) => !seen.has(k));
      return `${m.length} of ${acked().length} accepted records not consumed (first ${m.slice(0, 5).join(', ')}; last consumed ${[...seen].at(-1)})`;
    };
    await waitUntil('records consumed before the fault', () => acked().length >= 20 && acked().every((k) => consumed.has(k)), 30_000, missing(consumed));

    const downAt = Date.now();
    if (fault === 'stopped for 20 s') await broker.stop();
    else await broker.kill();
    // A second group subscribes while the broker is away (as a worker that opens its models
    // first does, late in the start): it must wait for the broker, not reject.
    const lateConsumed = new Set<string>();
    let lateSettled: string | null = null;
    const late = o.lateSubscription
      ? bus
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
          )
      : null;
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now()))); // the outage itself
    const lateWhileDown = lateSettled;
    await broker.start();
    const backAt = Date.now();
    const ackedAtBack = acked().length;
    await waitUntil('a publish accepted after the restart', () => acked().length > ackedAtBack, 30_000);
    const firstAckMs = Date.now() - backAt;
    await waitUntil('every accepted record consumed after the restart', () => acked().length > ackedAtBack + 20 && acked().every((k) => consumed.has(k)), 90_000, missing(consumed)).catch(
      async (err: Error) => {
        // Where are the missing records: on the topic (the consumer skipped them) or not (the
        // broker lost what it acknowledged)? A fresh group reads the topic to find out.
        const lost = acked().filter((k) => !consumed.has(k));
        throw new Error(`${err.message}; ${await locate(bus, topic, lost, sub)}`);
      },
    );
    const caughtUpMs = Date.now() - backAt;
    const lateSub = late ? await late : null;
    if (late) {
      assert.equal(lateWhileDown, null, 'the subscription made during the outage was still waiting when the broker came back');
      assert.ok(lateSub, `the subscription made during the outage: ${lateSettled}`);
      await waitUntil('every accepted record consumed by the group that subscribed during the outage', () => acked().every((k) => lateConsumed.has(k)), 90_000, missing(lateConsumed));
    }
    publishing = false;
    await producer;
    await waitUntil('the last accepted records consumed', () => acked().every((k) => consumed.has(k) && (!late || lateConsumed.has(k))), 30_000, missing(consumed));

    const during = publishes.filter((p) => p.at >= downAt && p.at < backAt);
    const refused = during.filter((p) => p.error !== undefined);
    const slowest = Math.max(...publishes.map((p) => p.ms));
    t.diagnostic(
      `broker ${fault}: ${during.length} publishes while down (${refused.length} refused), slowest publish ${slowest.toFixed(0)} ms; ` +
        `first accepted ${(firstAckMs / 1000).toFixed(1)} s and every accepted record consumed ${(caughtUpMs / 1000).toFixed(1)} s after the broker was back` +
        (late ? `; the subscription made meanwhile ${lateSettled}` : ''),
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
    await Promise.all([sub.stop(), lateSub?.stop()]);
  } finally {
    publishing = false;
    await producer;
  }
}

/** Says where `keys` are on `topic` (partition@offset) as a fresh group reads it, and the group's commits. */
async function locate(bus: Bus, topic: string, keys: string[], _sub: unknown): Promise<string> {
  const want = new Set(keys.slice(0, 20));
  const found = new Map<string, string>();
  let read = 0;
  const probe = await bus.subscribe({
    groupId: `outage-probe-${randomUUID().slice(0, 8)}`,
    topics: [topic],
    fromBeginning: true,
    eachBatch: async (b) => {
      for (const r of b.records) {
        read++;
        if (want.has(r.key)) found.set(r.key, `${b.partition}@${r.offset}`);
      }
    },
  });
  // A diagnostic only: read for at most 20 s, or until every wanted key is found.
  await waitUntil('the probe', () => found.size === want.size, 20_000).catch(() => undefined);
  await probe.stop();
  const committed = [...(await bus.committed(`outage-${topic.slice('outage.'.length)}`, topic))].map(([p, o]) => `${p}:${o}`).join(' ');
  return `a fresh group read ${read} records and found ${found.size} of the first ${want.size} missing on the topic (${[...found].map(([k, w]) => `${k}=${w}`).join(', ')}); the group's commits ${committed}`;
}
