// Filler detection as a user gets it (the whole upload path: VAD utterances, Moonshine tiny,
// forced alignment with optional fillers, acoustic rules, transcript merge), scored with the
// committed scorer against the truth of each set in test/fixtures/fillers/SPLIT.md. Pass marks
// are the issue's "Done when": recall ≥ 85 % with at most 1 false filler per minute on the real
// filler recordings as a whole and on the held-out part of the data; the generated espeak-ng clips
// keep ≥ 80 %; the clean read-speech clips get no false filler.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSessionRunner, type SessionRunner } from './session.test-util.js';
import { FILLED_PAUSE_EVENTS, clipsOf } from './filler-sets.test-util.js';
import { scoreFillers } from './filler-score.js';

let runner: SessionRunner;
before(async () => {
  runner = await openSessionRunner('moonshine-tiny');
});
after(async () => {
  await runner.release();
});

async function score(sets: string[], t: { diagnostic: (m: string) => void }) {
  let found = 0;
  let total = 0;
  let falseHits = 0;
  let minutes = 0;
  for (const clip of sets.flatMap(clipsOf)) {
    const { results } = await runner.run(clip.samples);
    const events = results.fillers.filter((f) => !clip.filledPausesOnly || FILLED_PAUSE_EVENTS.has(f.filler));
    const s = scoreFillers(clip.truth, events);
    found += s.found;
    total += s.total;
    falseHits += s.falseHits;
    minutes += clip.samples.length / 16_000 / 60;
    t.diagnostic(`${clip.set} ${clip.name}: found ${s.found}/${s.total}, false ${s.falseHits}; ${events.map((e) => `${e.filler}:${e.source}@${(e.startMs / 1000).toFixed(2)}`).join(' ')}`);
  }
  t.diagnostic(`${sets.join('+')}: recall ${found}/${total}, ${falseHits} false in ${minutes.toFixed(2)} min`);
  return { found, total, falseHits, minutes };
}

// Not met yet (measured 2026-12-02 with pitch 7c19873, Moonshine tiny): 8/15 with 0 false on the
// shared recordings, 14/23 with 1 false in 2.2 min on the held-out data. Moonshine tiny writes
// almost none of these speakers' fillers, Silero VAD leaves the quiet hums out of every utterance,
// and the cold-voiced fillers are mostly unvoiced to the pitch track; see the issue 7 report. The
// two tests run and print their figures as TODO until the bar is met; they are not lowered to it.
const NOT_MET = 'issue 7 item 6: Done-when not met yet (see the comment above)';

test('real filler recordings (../shared/data/fillers) as a whole: recall ≥ 85 %, at most 1 false filler per minute', { todo: NOT_MET }, async (t) => {
  const s = await score(['shared'], t);
  assert.equal(s.total, 15);
  assert.ok(s.found / s.total >= 0.85, `recall ${s.found}/${s.total}`);
  assert.ok(s.falseHits / s.minutes <= 1, `${s.falseHits} false in ${s.minutes.toFixed(2)} min`);
});

test('held-out data (cold corpus and the no-filler trap clip, held-out espeak voices, spliced real fillers): recall ≥ 85 %, at most 1 false filler per minute', { todo: NOT_MET }, async (t) => {
  const s = await score(['shared-heldout', 'espeak-heldout', 'spliced-heldout'], t);
  assert.ok(s.total >= 20, 'enough held-out fillers to measure');
  assert.ok(s.found / s.total >= 0.85, `recall ${s.found}/${s.total}`);
  assert.ok(s.falseHits / s.minutes <= 1, `${s.falseHits} false in ${s.minutes.toFixed(2)} min`);
});

test('generated espeak-ng clips: recall ≥ 80 %', async (t) => {
  const s = await score(['espeak'], t);
  assert.ok(s.found / s.total >= 0.8, `recall ${s.found}/${s.total}`);
});

test('clean read and spontaneous speech without fillers: no false filler', async (t) => {
  const s = await score(['speech'], t);
  assert.equal(s.falseHits, 0);
});
