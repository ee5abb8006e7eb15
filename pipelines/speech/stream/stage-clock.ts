// Wall time spent in each stage of recognition, kept where the stages run. Recognition,
// alignment and filled pauses run in the recognition thread (recognition-thread.ts), so a clock
// wrapped around main-thread functions sees none of them (bench/speech-live.bench.ts reported
// zeros that way); the thread keeps this clock and answers RecognitionThread.stageTimes().
// Cost: two clock reads per stage of an utterance.
import type { MoonshineRecognizer } from '../asr/moonshine.js';
import type { WordAligner } from '../align/index.js';

export interface StageTime {
  /** Total wall ms inside the stage. */
  ms: number;
  calls: number;
  /** The longest single call, ms. */
  maxMs: number;
}

export type StageTimes = Record<string, StageTime>;

export class StageClock {
  private stages: StageTimes = {};

  constructor(private readonly now: () => number = () => performance.now()) {}

  add(stage: string, ms: number): void {
    const s = (this.stages[stage] ??= { ms: 0, calls: 0, maxMs: 0 });
    s.ms += ms;
    s.calls++;
    s.maxMs = Math.max(s.maxMs, ms);
  }

  /** Runs `work` and adds its wall time to `stage`, whether it resolves or rejects. */
  async time<T>(stage: string, work: () => Promise<T>): Promise<T> {
    const t = this.now();
    try {
      return await work();
    } finally {
      this.add(stage, this.now() - t);
    }
  }

  /** The totals so far (a copy); with `reset`, the clock starts again from zero. */
  read(reset = false): StageTimes {
    const copy = structuredClone(this.stages);
    if (reset) this.stages = {};
    return copy;
  }
}

/**
 * Times a recogniser's transcribe() calls on `clock`, under the stage `stageOf(samples)` names
 * (a final's recognition and a partial's are different stages with the same call).
 * Changes the instance in place and returns it.
 */
export function clockTranscribe(recognizer: MoonshineRecognizer, clock: StageClock, stageOf: (samples: Float32Array) => string): MoonshineRecognizer {
  const transcribe = recognizer.transcribe.bind(recognizer);
  recognizer.transcribe = (samples, opts) => clock.time(stageOf(samples), () => transcribe(samples, opts));
  return recognizer;
}

/** Times an aligner's align() calls on `clock` as the stage `stage`. Changes the instance in place and returns it. */
export function clockAlign(aligner: WordAligner, clock: StageClock, stage: string): WordAligner {
  const align = aligner.align.bind(aligner);
  aligner.align = (...args) => clock.time(stage, () => align(...args));
  return aligner;
}
