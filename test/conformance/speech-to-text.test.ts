// Conformance with the communication platform document's speech-to-text example
// (../shared/seeds/003_22e76df369611114.txt, "POST /api/v1/speech/stt", served as
// POST /v1/speech/stt; the seeds' README puts only this part of that document in scope).
// The documented response is read out of the document, not retyped: every field it shows must
// be in Attune's answer with the documented JSON type (doc-examples.ts checkShape), and the
// fields with a unit are checked for it: duration_seconds and the words' start/end in seconds
// (against the clip's known length: milliseconds would be a thousand times too large),
// confidence 0..1, language an ISO 639-1 code. The request is the document's: a multipart
// audio file upload, here the JFK clip as MP3 (any accepted format works: README, Audio formats).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getTestServices } from '../services.js';
import { startTestAttune, type TestAttune } from '../attune.js';
import { checkShape } from './doc-examples.js';

const DOC = fileURLToPath(new URL('../../../shared/seeds/003_22e76df369611114.txt', import.meta.url));
if (!existsSync(DOC)) throw new Error(`communication platform document not found at ${DOC}: the product documents must sit beside the repository (../shared/seeds)`);

/** The JSON block after the heading of `route` (the document's example response). */
function documentedResponse(markdown: string, route: string): { status: string; body: any } {
  const lines = markdown.split(/\r?\n/);
  const at = lines.findIndex((l) => /^#+\s/.test(l) && l.replace(/^#+\s+/, '').trim() === route);
  assert.ok(at >= 0, `the document has a "${route}" heading`);
  let status = '';
  for (let i = at + 1; i < lines.length && !/^#+\s/.test(lines[i]); i++) {
    const m = /^\*\*Response:\*\*\s*(\d{3})/.exec(lines[i]);
    if (m) status = m[1];
    if (/^```json\s*$/.test(lines[i])) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      return { status, body: JSON.parse(body.join('\n')) };
    }
  }
  throw new Error(`no JSON example under "${route}"`);
}

const CLIP_S = 11; // test/fixtures/audio-formats/jfk.mp3: the 11.0 s JFK clip

describe('communication platform document: POST /api/v1/speech/stt', () => {
  let app: TestAttune;
  const doc = documentedResponse(readFileSync(DOC, 'utf8'), 'POST /api/v1/speech/stt');
  before(async () => {
    const services = await getTestServices({ needKafka: false });
    app = await startTestAttune({ clickhouseUrl: services.clickhouseUrl, env: { PORT: '18460' } });
  });
  after(async () => {
    await app?.cleanup();
  });

  test('the documented example is what this suite checks (status 200, five fields, words with word/start/end)', () => {
    assert.equal(doc.status, '200');
    assert.deepEqual(Object.keys(doc.body), ['text', 'language', 'confidence', 'duration_seconds', 'words']);
    assert.deepEqual(Object.keys(doc.body.words[0]), ['word', 'start', 'end']);
  });

  test('a multipart audio upload answers every documented field with its type and unit', async (tc) => {
    const form = new FormData();
    form.append('file', new Blob([readFileSync(new URL('../fixtures/audio-formats/jfk.mp3', import.meta.url))], { type: 'audio/mpeg' }), 'jfk.mp3');
    const res = await fetch(`${app.baseUrl}/v1/speech/stt`, { method: 'POST', headers: { authorization: `Bearer ${app.token('stt-user', 'stt-org')}` }, body: form });
    const body = (await res.json()) as any;
    assert.equal(String(res.status), doc.status, JSON.stringify(body));
    const checks = checkShape(doc.body, body);
    const failed = checks.filter((c) => !c.ok);
    tc.diagnostic(`${checks.length} documented fields checked, ${failed.length} failed; Attune adds ${Object.keys(body).filter((k) => !(k in doc.body)).join(', ')}`);
    assert.deepEqual(failed, []);
    // Units: seconds, 0..1, a language code.
    assert.ok(Math.abs(body.duration_seconds - CLIP_S) < 0.05, `duration_seconds ${body.duration_seconds} (the clip is ${CLIP_S} s)`);
    assert.ok(body.confidence > 0 && body.confidence <= 1, `confidence ${body.confidence}`);
    assert.match(body.language, /^[a-z]{2}$/);
    assert.ok(body.words.length >= 15, `${body.words.length} words`);
    for (const w of body.words) assert.ok(w.start >= 0 && w.end > w.start && w.end <= CLIP_S + 0.05, `${w.word}: ${w.start}-${w.end} s`);
    // The words spread over the clip (seconds, not fractions of it): the last ends past 8 s.
    assert.ok(body.words.at(-1).end > 8, `last word ends at ${body.words.at(-1).end} s`);
    // The document's words carry no punctuation ("Hello, welcome" → "Hello"); Attune's `text`
    // is each word as written, and those make up the text.
    assert.equal(body.words.map((w: any) => w.text).join(' '), body.text);
    for (const w of body.words) {
      assert.match(w.word, /^[\p{L}\p{N}](?:.*[\p{L}\p{N}])?$/u, `"${w.word}" has no punctuation around it`);
      assert.ok(w.text.includes(w.word), `"${w.word}" is "${w.text}" without its punctuation`);
    }
    assert.ok(body.words.some((w: any) => w.text !== w.word), 'the clip has punctuated words ("you,")');
  });
});
