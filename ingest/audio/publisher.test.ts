// The stream publisher against a recording bus: upload framing (full 2 s frames, four per
// publish call, each call awaited), live framing (every write published at once), the last
// frame (flagged, or empty when nothing is left), aborts, and a failing bus.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Bus, type OutgoingRecord } from '../../bus/types.js';
import { Topics } from '../../schemas/topics.js';
import { createCodec, type Codec } from '../../schemas/registry/codec.js';
import { LocalSchemaRegistry } from '../../schemas/registry/registry.js';
import type { SpeechAudioFrame } from '../../schemas/registry/schemas.js';
import { LiveFraming, SpeechAudioPublisher, UploadFraming, samplesAt16k, type SpeechStreamInfo } from './publisher.js';
import { resample } from './resample.js';
import { toPcm16 } from '../../schemas/audio-frames.js';

let codec: Codec;
before(async () => {
  codec = await createCodec(LocalSchemaRegistry.fromManifest());
});

class RecordingBus {
  calls: OutgoingRecord[][] = [];
  /** Publish calls still waiting (the test releases them). */
  inFlight = 0;
  fail = false;
  hold: Promise<void> | null = null;
  asBus(): Bus {
    return {
      kind: 'embedded',
      ensureTopics: async () => {},
      publish: async (topic, records) => {
        assert.equal(topic, 'p.' + Topics.speechAudio);
        this.inFlight++;
        try {
          if (this.hold) await this.hold;
          if (this.fail) throw new Error('broker down');
          this.calls.push(records);
        } finally {
          this.inFlight--;
        }
      },
      subscribe: async () => ({ commit: async () => {}, stop: async () => {} }),
      committed: async () => new Map(),
      partitionCount: async () => 1,
      close: async () => {},
    };
  }
  frames(): SpeechAudioFrame[] {
    return this.calls.flat().map((r) => codec.decodeSync<SpeechAudioFrame>(r.value));
  }
}

const info = (over: Partial<SpeechStreamInfo> = {}): SpeechStreamInfo => ({
  sessionId: 's-1',
  orgId: 'o-1',
  userId: 'u-1',
  streamId: 'up-1',
  source: 'upload',
  audioStartedAt: 1_700_000_000_000,
  sourceSampleRateHz: 16000,
  expectedSamples: null,
  settingsJson: '{"pause_ms":300}',
  ...over,
});

function publisher(bus: RecordingBus, i: SpeechStreamInfo, framing = UploadFraming) {
  const topics = Object.fromEntries(Object.entries(Topics).map(([k, v]) => [k, 'p.' + v])) as unknown as typeof Topics;
  return new SpeechAudioPublisher({ bus: bus.asBus(), topics, codec: codec, now: () => 1_700_000_000_500 }, i, framing);
}

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i % 2000) - 1000) / 2000);

test('upload framing: full 2 s frames, four to a publish call, the short last one flagged', async () => {
  const bus = new RecordingBus();
  const signal = ramp(32000 * 9 + 123);
  const p = publisher(bus, info({ expectedSamples: signal.length }));
  for (let at = 0; at < signal.length; at += 10_000) await p.write(signal.subarray(at, at + 10_000));
  assert.deepEqual(bus.calls.map((c) => c.length), [4, 4], 'nothing published before a batch is full');
  await p.end();
  assert.deepEqual(bus.calls.map((c) => c.length), [4, 4, 2]);
  const frames = bus.frames();
  assert.deepEqual(frames.map((f) => f.pcm16.length / 2), [...Array(9).fill(32000), 123]);
  assert.deepEqual(frames.map((f) => f.sequence), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(frames.map((f) => f.is_last), [...Array(9).fill(false), true]);
  assert.ok(Buffer.concat(frames.map((f) => f.pcm16)).equals(toPcm16(signal)));
  for (const f of frames) {
    assert.equal(f.expected_samples, signal.length);
    assert.equal(f.sent_at, 1_700_000_000_500);
    assert.equal(f.settings_json, '{"pause_ms":300}');
  }
  assert.ok(bus.calls.flat().every((r) => r.key === 's-1'));
  assert.equal(p.samplesPublished, signal.length);
  assert.equal(p.framesPublished, 10);
  assert.ok(p.ended);
  await assert.rejects(() => p.write(ramp(10)), /after the stream ended/);
});

test('a write resolves only once the bus has its frames', async () => {
  const bus = new RecordingBus();
  let release!: () => void;
  bus.hold = new Promise((r) => (release = r));
  const p = publisher(bus, info(), LiveFraming);
  let done = false;
  const w = p.write(ramp(4000)).then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(bus.inFlight, 1);
  assert.equal(done, false);
  release();
  await w;
  assert.equal(done, true);
});

test('live framing: each write is published at once, in frames of at most 4000 samples', async () => {
  const bus = new RecordingBus();
  const p = publisher(bus, info({ source: 'live', streamId: 'live-x', sourceSampleRateHz: 48000 }), LiveFraming);
  const signal = ramp(48000);
  const sizes: number[] = [];
  for (let at = 0; at < signal.length; at += 960 * 15) {
    await p.write(signal.subarray(at, at + 960 * 15)); // 300 ms messages
    sizes.push(bus.frames().reduce((n, f) => n + f.pcm16.length / 2, 0));
  }
  // Every message's audio is out before the next one (the resampler keeps its ~3 ms tail).
  sizes.forEach((n, i) => assert.ok(n >= Math.min(16000, (i + 1) * 4800) - 64, `after message ${i}: ${n}`));
  await p.end();
  const frames = bus.frames();
  assert.ok(frames.every((f) => f.pcm16.length <= 8000));
  assert.ok(Buffer.concat(frames.map((f) => f.pcm16)).equals(toPcm16(resample(signal, 48000))));
  assert.equal(frames.at(-1)!.is_last, true);
  assert.equal(frames.filter((f) => f.is_last).length, 1);
});

test('end with nothing left publishes an empty last frame; abort adds an empty frame with the reason', async () => {
  const bus = new RecordingBus();
  const p = publisher(bus, info());
  await p.write(ramp(4 * 32000)); // exactly one full batch: published, nothing left over
  await p.end();
  const ended = bus.frames();
  assert.deepEqual(
    ended.map((f) => [f.sequence, f.sample_offset, f.pcm16.length, f.is_last]),
    [[0, 0, 64000, false], [1, 32000, 64000, false], [2, 64000, 64000, false], [3, 96000, 64000, false], [4, 128000, 0, true]],
  );

  const bus2 = new RecordingBus();
  const a = publisher(bus2, info({ streamId: 'up-2' }));
  await a.write(ramp(40000));
  await a.abort('truncated_data');
  await a.abort('again');
  const aborted = bus2.frames();
  assert.deepEqual(aborted.map((f) => [f.sequence, f.pcm16.length / 2, f.is_last, f.aborted_reason]), [[0, 32000, false, null], [1, 0, true, 'truncated_data']]);
});

test('a bus failure is a coded unavailable error', async () => {
  const bus = new RecordingBus();
  bus.fail = true;
  const p = publisher(bus, info(), LiveFraming);
  await assert.rejects(() => p.write(ramp(100)), (e: any) => e.code === 'unavailable' && e.details[0].reason === 'bus_publish_failed');
});

test('samplesAt16k is what the resampler emits in total', () => {
  for (const [n, rate] of [[48000, 48000], [44101, 44100], [12345, 22050], [7, 16000], [1, 44100]] as const) {
    assert.equal(samplesAt16k(n, rate), resample(new Float32Array(n), rate).length, `${n} at ${rate}`);
  }
});
