// The acoustic detector on the generated espeak-ng filler clips, on real recordings without
// fillers, and on real recordings with espeak fillers spliced in. Per-clip numbers are printed
// (node --test shows them as diagnostics) so that a change in the detector can be judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { detectFilledPauses } from './filled-pauses.js';
import { REAL_SPEECH, addScores, generatedClipNames, loadGeneratedClip, scoreDetections, spliceFillers, type Score } from './filler-clips.test-util.js';
import { readWavFile } from '../wav.test-util.js';

const line = (name: string, s: Score) =>
  `${name}: found ${s.found}/${s.total}, false ${s.falseHits} in ${(s.speechMinutes * 60).toFixed(1)} s of speech`;

test('generated clips: the acoustic rules alone find at least 80% of the fillers, and no more than 1 false hit per minute on the clips without fillers', (t) => {
  const names = generatedClipNames();
  assert.ok(names.length >= 6);
  const scores = names.map((name) => {
    const clip = loadGeneratedClip(name);
    const s = scoreDetections(clip, detectFilledPauses(clip.samples));
    t.diagnostic(line(name, s));
    return s;
  });
  const all = addScores(scores);
  t.diagnostic(line('all', all));
  assert.ok(all.total >= 15, 'the clips hold enough fillers to measure');
  assert.ok(all.found / all.total >= 0.8, `recall ${all.found}/${all.total}`);
  // Over whole clips the rules also hear espeak's comma-held syllables ("The numbers are," and
  // "travel," in fillers_us_m_slow: level, steady, at the speaker's median pitch) as held vowels:
  // 2 in 1.5 min with the Viterbi pitch track of fa3f987. What a user gets is the per-utterance
  // path with the transcript merge, which the end-to-end test holds to at most 1 per minute on
  // these clips (test/speech-e2e.scenario.ts) and real-fillers.test.ts on real speech.
  t.diagnostic(`false hits over all generated clips: ${all.falseHits} in ${all.speechMinutes.toFixed(2)} min`);
  // The clips without fillers carry the false-hit rate on their own.
  const clean = scores.filter((s, i) => names[i].startsWith('clean_'));
  assert.ok(clean.length >= 2);
  const c = addScores(clean);
  assert.ok(c.falseHits / c.speechMinutes <= 1, `clean clips: ${c.falseHits} false hits`);
});

test('real recordings without fillers: at most 1 false hit per minute', (t) => {
  const files = readdirSync(REAL_SPEECH).filter((f) => f.endsWith('.wav'));
  assert.ok(files.length >= 5);
  let falseHits = 0;
  let minutes = 0;
  for (const f of files) {
    const { samples } = readWavFile(join(REAL_SPEECH, f));
    const found = detectFilledPauses(samples);
    // The AMI clip is spontaneous speech whose transcript has no fillers; what it finds is reported.
    t.diagnostic(`${f}: ${found.length} hit(s) ${found.map((p) => `${Math.round(p.startMs)}–${Math.round(p.endMs)} ms`).join(', ')}`);
    falseHits += found.length;
    minutes += samples.length / 16_000 / 60;
  }
  assert.ok(falseHits / minutes <= 1, `${falseHits} false hits in ${minutes.toFixed(2)} min`);
});

test('real recordings with espeak fillers spliced in between sentences and into pauses', (t) => {
  const clips = [
    spliceFillers({ recordings: ['jfk_1961_inaugural_M'], snippets: ['um_m_long', 'uh_m_fast', 'um_m_fast', 'uh_m_long'], insideGapsMinMs: 300 }),
    spliceFillers({
      recordings: ['librispeech_251-137823-0002_M', 'librispeech_251-118436-0001_M', 'librispeech_3536-23268-0010_F'],
      snippets: ['uh_m_long', 'um_f_fast'],
    }),
    spliceFillers({
      recordings: ['librispeech_3536-23268-0010_F', 'ami_ES2011a_headset0_40-46s_F_spontaneous', 'librispeech_251-118436-0001_M'],
      snippets: ['um_f_long', 'uh_f_fast', 'uh_f_long', 'um_m_fast'],
    }),
  ];
  const scores = clips.map((clip) => {
    const s = scoreDetections(clip, detectFilledPauses(clip.samples));
    t.diagnostic(line(clip.name, s));
    return s;
  });
  const all = addScores(scores);
  t.diagnostic(line('all', all));
  assert.ok(all.total >= 8);
  // The bar is the espeak clips' 80 % of the issue's Done-when (it was 0.75 here, a measured
  // 6/8, until the level floor relative to the speaker of d68dba6 found 7/8). espeak's fast "um"
  // snippets (200–220 ms) have a vowel of only 60–80 ms before the nasal and are the misses.
  assert.ok(all.found / all.total >= 0.8, `recall ${all.found}/${all.total}`);
  assert.ok(all.falseHits / all.speechMinutes <= 1, `${all.falseHits} false hits`);
});
