// Benchmark audio for bench/speech.bench.ts: the real 16 kHz speech clips of
// ../shared/data/speech, whole, one after another with a short silence between them, until at
// least the asked length. The silence (400 ms) is shorter than the analyzer's utterance gap
// (1.5 s), so clips join into utterances as phrases of continuous speech do, up to the 30 s cap.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readWavFile } from '../pipelines/speech/wav.test-util.js';

export const SAMPLE_RATE = 16_000;
export const GAP_MS = 400;

export interface BenchClip {
  name: string;
  samples: Float32Array;
}

export const speechDir = fileURLToPath(new URL('../../shared/data/speech/', import.meta.url));

export function loadSpeechClips(): BenchClip[] {
  const clips = readdirSync(speechDir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => ({ name: f, wav: readWavFile(speechDir + f) }))
    .filter((c) => c.wav.sampleRate === SAMPLE_RATE)
    .map((c) => ({ name: c.name, samples: c.wav.samples }));
  if (clips.length === 0) throw new Error(`no 16 kHz clips in ${speechDir}`);
  return clips;
}

/**
 * Whole clips from `firstClip` on (wrapping around), each followed by GAP_MS of silence, until
 * the audio is at least `minSeconds` long. Different `firstClip`s give streams different audio.
 */
export function speechAudio(clips: readonly BenchClip[], minSeconds: number, firstClip = 0): { samples: Float32Array; clips: string[] } {
  const gap = Math.round((GAP_MS * SAMPLE_RATE) / 1000);
  const picked: BenchClip[] = [];
  let length = 0;
  for (let c = firstClip; length < minSeconds * SAMPLE_RATE; c++) {
    const clip = clips[c % clips.length];
    picked.push(clip);
    length += clip.samples.length + gap;
  }
  const samples = new Float32Array(length);
  let at = 0;
  for (const clip of picked) {
    samples.set(clip.samples, at);
    at += clip.samples.length + gap;
  }
  return { samples, clips: picked.map((c) => c.name) };
}
