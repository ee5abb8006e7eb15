// A ~60 MB upload, generated on the fly (WAV header, then a tone), goes through while the
// process's memory grows by far less than the file: the route consumes the body only as
// fast as the bus takes the frames, and nothing holds the file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeWav, injectUpload, startIngestTestServer, wavHeader, wavPart, type IngestTestServer } from './speech-ingest.test-util.js';

const FILE_BYTES = 60 * 1024 * 1024;
const RATE = 48000; // resampled to 16 kHz: the bus carries 1/12 of the file's bytes
const CHANNELS = 2;
const BLOCK = CHANNELS * 4; // float32 stereo
const CHUNK_FRAMES = 8192; // 64 KB per chunk

// Garbage buffers are collected when V8 decides (tens of MB may wait for it), so memory is
// measured after forced collections: what is still referenced is what the path holds.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let srv: IngestTestServer;
before(async () => {
  // The bus keeps a small tail in memory: what is measured is the upload path, not the
  // bus's cache of the (here 15 MB of) frames.
  srv = await startIngestTestServer({ keepAudio: false, busMemoryBytesPerPartition: 1024 * 1024 });
});
after(async () => {
  await srv?.close();
});

/** Header + float32 stereo tone, produced chunk by chunk as the consumer asks. */
async function* generatedWav(dataBytes: number): AsyncGenerator<Buffer> {
  yield wavHeader({ sampleRate: RATE, channels: CHANNELS, bitsPerSample: 32, formatTag: 3, dataBytes });
  let frame = 0;
  let left = dataBytes;
  while (left > 0) {
    const frames = Math.min(CHUNK_FRAMES, left / BLOCK);
    const chunk = Buffer.allocUnsafe(frames * BLOCK);
    for (let i = 0; i < frames; i++, frame++) {
      const v = 0.3 * Math.sin((2 * Math.PI * 220 * frame) / RATE);
      chunk.writeFloatLE(v, i * BLOCK);
      chunk.writeFloatLE(-v, i * BLOCK + 4);
    }
    left -= chunk.length;
    yield chunk;
  }
}

test(`a ${FILE_BYTES / 1048576} MB upload streams through in bounded memory`, async () => {
  const token = srv.token('u-big', 'o-big');
  // Warm up (code paths, chDB, bus segments) so the baseline is the steady state.
  const warm = await srv.newSession('u-big', 'o-big');
  const small = encodeWav([new Float32Array(RATE * 3).fill(0.1), new Float32Array(RATE * 3).fill(-0.1)], RATE, 'float32');
  assert.equal((await injectUpload(srv.app, warm.id, token, [wavPart(small)])).status, 202);

  const session = await srv.newSession('u-big', 'o-big');
  const dataBytes = Math.floor((FILE_BYTES - 44) / BLOCK) * BLOCK;
  gc();
  const base = process.memoryUsage();
  const peak = { rss: base.rss, heapUsed: base.heapUsed, buffers: base.arrayBuffers };
  const sampler = setInterval(() => {
    gc();
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.buffers = Math.max(peak.buffers, m.arrayBuffers);
  }, 200);
  const t0 = Date.now();
  let res;
  try {
    res = await injectUpload(srv.app, session.id, token, [wavPart(generatedWav(dataBytes), 'big.wav')]);
  } finally {
    clearInterval(sampler);
  }
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(res.status, 202, JSON.stringify(res.body));

  const stream = await srv.frames.finished(res.body.upload_id, 60_000);
  const frames = dataBytes / BLOCK;
  const at16k = Math.ceil((frames * 16000) / RATE);
  assert.equal(stream.samples, at16k, 'every sample arrived, resampled to 16 kHz');
  assert.equal(stream.last!.expected_samples, at16k);
  assert.equal(stream.frames.length, Math.ceil(at16k / 32000));
  const upload = (await srv.uploads.get(res.body.upload_id))!;
  assert.equal(upload.sizeBytes, 44 + dataBytes);

  const mb = (b: number) => b / 1048576;
  const growth = { rss: mb(peak.rss - base.rss), heapUsed: mb(peak.heapUsed - base.heapUsed), buffers: mb(peak.buffers - base.arrayBuffers) };
  console.log(
    `# ${mb(FILE_BYTES)} MB (${(frames / RATE).toFixed(0)} s of stereo float32) in ${seconds.toFixed(2)} s (${(mb(FILE_BYTES) / seconds).toFixed(1)} MB/s); ` +
      `peak growth: rss ${growth.rss.toFixed(1)} MB, heap ${growth.heapUsed.toFixed(1)} MB, buffers ${growth.buffers.toFixed(1)} MB`,
  );
  assert.ok(growth.rss < 40, `RSS grew ${growth.rss.toFixed(1)} MB`);
  // Live memory: a few batches in flight, plus the embedded bus's in-memory records.
  assert.ok(growth.heapUsed + growth.buffers < 30, `heap + buffers grew ${(growth.heapUsed + growth.buffers).toFixed(1)} MB`);
});
