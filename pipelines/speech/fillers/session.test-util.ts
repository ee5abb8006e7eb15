// One recording through the uploaded stream's whole path, minus the bus and the store:
// SpeechStreamAnalyzer (Silero VAD, utterances) → RecognitionQueue (Moonshine, forced alignment
// with optional fillers, acoustic filled pauses) → assembleSessionResults. For the filler tests
// and scripts/fixtures/eval-fillers.ts, so both measure what a user gets.
import { SileroVad } from '../vad/silero.js';
import { SpeechStreamAnalyzer } from '../stream/analyzer.js';
import { RecognitionQueue, type SegmentTranscript } from '../stream/recognition.js';
import { assembleSessionResults, type SessionResults } from '../stream/results.js';
import type { SecondFeatures } from '../stream/seconds.js';
import { MoonshineRecognizer } from '../asr/moonshine.js';
import { WordAligner } from '../align/index.js';
import type { SpeechSegment } from '../vad/segments.js';

const SR = 16_000;
/** 20 ms pieces, as a live client sends them. */
const PIECE = 320;

export interface SessionRunner {
  run(samples: Float32Array): Promise<{ transcripts: SegmentTranscript[]; results: SessionResults; segments: readonly SpeechSegment[] }>;
  release(): Promise<void>;
}

export async function openSessionRunner(model = 'moonshine-tiny'): Promise<SessionRunner> {
  const vad = await SileroVad.load();
  const recognizer = await MoonshineRecognizer.load({ model });
  const aligner = await WordAligner.load();
  return {
    async run(samples) {
      vad.reset();
      const analyzer = new SpeechStreamAnalyzer(vad);
      const queue = new RecognitionQueue({ recognizer: async () => recognizer, aligner });
      const transcripts: SegmentTranscript[] = [];
      for (let i = 0; i < samples.length; i += PIECE) {
        const step = await analyzer.push(samples.subarray(i, i + PIECE));
        for (const seg of step.segments) transcripts.push(await queue.final(seg, model));
      }
      for (const seg of analyzer.finish().segments) transcripts.push(await queue.final(seg, model));
      const seconds: SecondFeatures[] = [];
      for (let i = 0; i < analyzer.features.completeSeconds(true); i++) seconds.push(analyzer.features.features(i));
      const results = assembleSessionResults({
        durationMs: Math.round((analyzer.sampleCount * 1000) / SR),
        transcripts,
        speechSegments: analyzer.allSegments,
        seconds,
        voicedF0: analyzer.features.voicedF0.view(),
        frameDbfs: analyzer.features.frameDbfs.view(),
      });
      return { transcripts, results, segments: analyzer.allSegments };
    },
    async release() {
      await Promise.all([vad.release(), recognizer.release()]);
      aligner.release();
    },
  };
}
