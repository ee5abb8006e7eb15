// Filler test material: the generated espeak-ng clips with their ground truth
// (test/fixtures/fillers, made by scripts/fixtures/make-filler-clips.mjs), real recordings with
// the committed espeak "um"/"uh" snippets spliced in at known places, and scoring of detections
// against truth.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWavFile } from '../wav.test-util.js';

const root = new URL('../../../', import.meta.url).pathname;
export const FILLER_FIXTURES = join(root, 'test/fixtures/fillers');
export const REAL_SPEECH = join(root, '../shared/data/speech');
const SR = 16_000;

export interface TruthFiller {
  filler: string;
  start_ms: number;
  end_ms: number;
  duration_ms: number;
}

export interface FillerClip {
  name: string;
  samples: Float32Array;
  /** Time that counts as speech for false-hit rates, ms. */
  speechMs: number;
  fillers: TruthFiller[];
}

export function generatedClipNames(): string[] {
  return JSON.parse(readFileSync(join(FILLER_FIXTURES, 'index.json'), 'utf8')).clips;
}

export function loadGeneratedClip(name: string): FillerClip {
  const truth = JSON.parse(readFileSync(join(FILLER_FIXTURES, `${name}.json`), 'utf8'));
  const { samples, sampleRate } = readWavFile(join(FILLER_FIXTURES, truth.clip));
  if (sampleRate !== SR) throw new Error(`${name}: expected 16 kHz, got ${sampleRate}`);
  return { name, samples, speechMs: truth.speech_ms, fillers: truth.fillers };
}

export function loadSnippet(name: string): Float32Array {
  return readWavFile(join(FILLER_FIXTURES, 'snippets', `${name}.wav`)).samples;
}

export interface Score {
  found: number;
  total: number;
  falseHits: number;
  speechMinutes: number;
}

/** A truth filler is found when any detection overlaps it; a detection overlapping no truth is false. */
export function scoreDetections(clip: FillerClip, detections: readonly { startMs: number; endMs: number }[]): Score {
  const overlaps = (d: { startMs: number; endMs: number }, t: TruthFiller) => d.startMs < t.end_ms && t.start_ms < d.endMs;
  return {
    found: clip.fillers.filter((t) => detections.some((d) => overlaps(d, t))).length,
    total: clip.fillers.length,
    falseHits: detections.filter((d) => !clip.fillers.some((t) => overlaps(d, t))).length,
    speechMinutes: clip.speechMs / 60_000,
  };
}

export function addScores(scores: readonly Score[]): Score {
  return scores.reduce(
    (a, s) => ({ found: a.found + s.found, total: a.total + s.total, falseHits: a.falseHits + s.falseHits, speechMinutes: a.speechMinutes + s.speechMinutes }),
    { found: 0, total: 0, falseHits: 0, speechMinutes: 0 },
  );
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let e = 0;
  for (let i = from; i < to; i++) e += x[i] * x[i];
  return Math.sqrt(e / Math.max(1, to - from));
}

/** Level of the speech in `x`: RMS over its 10 ms blocks within 20 dB of the loudest. */
export function speechRms(x: Float32Array): number {
  const blocks: number[] = [];
  for (let i = 0; i + 160 <= x.length; i += 160) blocks.push(rms(x, i, i + 160));
  const top = Math.max(...blocks);
  const loud = blocks.filter((b) => b > top / 10);
  return Math.sqrt(loud.reduce((a, b) => a + b * b, 0) / loud.length);
}

/**
 * Silent gaps of at least `minMs` inside a recording (10 ms blocks 25 dB under its loudest),
 * as [startSample, endSample), excluding the leading and trailing silence.
 */
export function findGaps(x: Float32Array, minMs = 150): [number, number][] {
  const block = 160;
  const levels: number[] = [];
  for (let i = 0; i + block <= x.length; i += block) levels.push(rms(x, i, i + block));
  const quiet = Math.max(...levels) * 10 ** (-25 / 20);
  const gaps: [number, number][] = [];
  let start = -1;
  const firstLoud = levels.findIndex((l) => l >= quiet);
  let lastLoud = levels.length - 1;
  while (lastLoud > 0 && levels[lastLoud] < quiet) lastLoud--;
  for (let b = firstLoud; b <= lastLoud; b++) {
    if (levels[b] < quiet) {
      if (start < 0) start = b;
    } else if (start >= 0) {
      if ((b - start) * 10 >= minMs) gaps.push([start * block, b * block]);
      start = -1;
    }
  }
  return gaps;
}

export interface SpliceSpec {
  /** Real recordings in ../shared/data/speech, in order, without ".wav". */
  recordings: string[];
  /** Snippet names (e.g. 'um_m_long'), used in turn at each insertion point. */
  snippets: string[];
  /** Also insert into silent gaps of at least this length inside a recording (default: no). */
  insideGapsMinMs?: number;
}

/**
 * Real recordings joined with espeak filler snippets spliced between them (and, optionally,
 * into the silent gaps between words inside them), each snippet scaled to the speech level of
 * the recording before it and set off by 80 ms of silence. Returns the samples and the truth.
 */
export function spliceFillers(spec: SpliceSpec): FillerClip {
  const parts: Float32Array[] = [];
  const fillers: TruthFiller[] = [];
  let at = 0;
  let speechMs = 0;
  let next = 0;
  const pad = new Float32Array(Math.round(0.08 * SR));
  const push = (x: Float32Array) => {
    parts.push(x);
    at += x.length;
  };
  const insert = (level: number) => {
    const name = spec.snippets[next++ % spec.snippets.length];
    const raw = loadSnippet(name);
    const gain = level / speechRms(raw);
    const s = raw.map((v) => v * gain);
    push(pad);
    const start = at;
    push(s);
    push(pad);
    const ms = (n: number) => (n * 1000) / SR;
    fillers.push({ filler: name.slice(0, 2), start_ms: ms(start), end_ms: ms(start + s.length), duration_ms: ms(s.length) });
    speechMs += ms(s.length);
  };
  spec.recordings.forEach((rec, r) => {
    const { samples } = readWavFile(join(REAL_SPEECH, `${rec}.wav`));
    const level = speechRms(samples);
    speechMs += (samples.length * 1000) / SR;
    let from = 0;
    if (spec.insideGapsMinMs !== undefined) {
      for (const [g0, g1] of findGaps(samples, spec.insideGapsMinMs)) {
        const mid = (g0 + g1) >> 1;
        push(samples.subarray(from, mid));
        insert(level);
        from = mid;
      }
    }
    push(samples.subarray(from));
    if (r < spec.recordings.length - 1) insert(level);
  });
  const samples = new Float32Array(at);
  let k = 0;
  for (const p of parts) {
    samples.set(p, k);
    k += p.length;
  }
  return { name: spec.recordings.join('+'), samples, speechMs, fillers };
}
