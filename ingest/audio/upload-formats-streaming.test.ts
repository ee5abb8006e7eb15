// Compressed uploads stream like WAV ones: a 5.5-minute MP3 and a 7.3-minute WebM Opus (the
// committed JFK clips repeated: MP3 frames simply follow each other, and a MediaRecorder-style
// WebM's unknown-size Clusters can be appended after its header) go through while the
// process's memory grows by far less than their decoded audio (58 MB and 85 MB of float
// samples at the files' rates): each decoder holds a page, a block or its own input buffer,
// and the route reads the body only as fast as the bus takes the frames.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { injectUpload, startIngestTestServer, wavPart, type IngestTestServer } from './speech-ingest.test-util.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const fixtures = new URL('../../test/fixtures/audio-formats/', import.meta.url);
const mp3 = readFileSync(new URL('jfk.mp3', fixtures));
const liveWebm = readFileSync(new URL('jfk.live.webm', fixtures));
/** The WebM's header (EBML, Segment of unknown size, Info, Tracks) and its Clusters. */
const firstCluster = liveWebm.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));
const webmHeader = liveWebm.subarray(0, firstCluster);
const webmClusters = liveWebm.subarray(firstCluster);

let srv: IngestTestServer;
before(async () => {
  srv = await startIngestTestServer({ keepAudio: false, busMemoryBytesPerPartition: 1024 * 1024 });
});
after(async () => {
  await srv?.close();
});

async function* repeated(head: Buffer, body: Buffer, times: number): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for (let i = 0; i < times; i++) for (let at = 0; at < body.length; at += 65536) yield body.subarray(at, at + 65536);
}

const cases = [
  { name: 'MP3', file: 'long.mp3', head: Buffer.alloc(0), body: mp3, times: 30, encoding: 'mp3', decodedRate: 44100 },
  { name: 'WebM Opus (MediaRecorder-style)', file: 'long.webm', head: webmHeader, body: webmClusters, times: 40, encoding: 'opus', decodedRate: 48000 },
];

for (const c of cases) {
  test(`a ${((c.times * 11) / 60).toFixed(1)} min ${c.name} upload streams through in bounded memory`, async () => {
    assert.ok(firstCluster > 0, 'the WebM has Clusters after its header');
    const token = srv.token('u-long', 'o-long');
    const warm = await srv.newSession('u-long', 'o-long');
    assert.equal((await injectUpload(srv.app, warm.id, token, [wavPart(c.name === 'MP3' ? mp3 : liveWebm, `warm.${c.encoding}`)])).status, 202);
    const session = await srv.newSession('u-long', 'o-long');
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
      res = await injectUpload(srv.app, session.id, token, [wavPart(repeated(c.head, c.body, c.times), c.file)]);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const stream = await srv.frames.finished(res.body.upload_id, 60_000);
    const audioS = stream.samples / 16000;
    // Every copy's 11 s arrived. Gapless trimming applies to a stream's first header only, so
    // each appended MP3 copy also brings its encoder delay and padding (under 0.1 s).
    assert.ok(audioS >= 11 * c.times - 0.05 && audioS < (11 + 0.1) * c.times, `${audioS.toFixed(1)} s of audio for ${c.times} copies`);
    const upload = (await srv.uploads.get(res.body.upload_id))!;
    assert.equal(upload.encoding, c.encoding);
    assert.equal(upload.sizeBytes, c.head.length + c.times * c.body.length);
    const mb = (b: number) => b / 1048576;
    const growth = { rss: mb(peak.rss - base.rss), heapUsed: mb(peak.heapUsed - base.heapUsed), buffers: mb(peak.buffers - base.arrayBuffers) };
    const decodedMb = mb(audioS * c.decodedRate * 4);
    console.log(
      `# ${c.name}: ${mb(upload.sizeBytes).toFixed(1)} MB, ${audioS.toFixed(0)} s (${decodedMb.toFixed(0)} MB decoded) in ${seconds.toFixed(2)} s (${(audioS / seconds).toFixed(0)}x real time); ` +
        `peak growth: rss ${growth.rss.toFixed(1)} MB, heap ${growth.heapUsed.toFixed(1)} MB, buffers ${growth.buffers.toFixed(1)} MB`,
    );
    // The bounds of the WAV streaming test (upload-streaming.test.ts), far under the decoded audio.
    assert.ok(growth.rss < 40, `RSS grew ${growth.rss.toFixed(1)} MB`);
    assert.ok(growth.heapUsed + growth.buffers < 30, `heap + buffers grew ${(growth.heapUsed + growth.buffers).toFixed(1)} MB`);
  });
}
