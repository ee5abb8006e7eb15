// The recognition thread (see recognition-thread.ts): opens the models, runs a RecognitionQueue
// and answers the main thread's requests.
import { parentPort } from 'node:worker_threads';
import { MoonshineRecognizer } from '../asr/moonshine.js';
import { WordAligner } from '../align/index.js';
import { isAttuneError } from '../../../lib/errors.js';
import { RecognitionQueue } from './recognition.js';
import { StageClock, clockAlign, clockTranscribe } from './stage-clock.js';
import type { FromThread, ToThread } from './recognition-thread.js';

const port = parentPort!;
const recognizers = new Map<string, Promise<MoonshineRecognizer>>();
let aligner: WordAligner | null = null;
let queue: RecognitionQueue | null = null;
// Where the thread's time goes, for RecognitionThread.stageTimes(). A final's recognition is told
// from a partial's by its audio: the queue hands transcribe() the very array the final came with.
const stages = new StageClock();
const finalAudio = new WeakSet<Float32Array>();
const recognitionStage = (samples: Float32Array) => (finalAudio.has(samples) ? 'final_recognition' : 'partial_recognition');

function recognizerFor(model: string): Promise<MoonshineRecognizer> {
  let r = recognizers.get(model);
  if (!r) {
    r = MoonshineRecognizer.load({ model }).then((rec) => clockTranscribe(rec, stages, recognitionStage));
    recognizers.set(model, r);
    r.catch(() => recognizers.delete(model));
  }
  return r;
}

const send = (m: FromThread) => port.postMessage(m);
const failure = (id: number | null, err: unknown): FromThread => ({
  type: 'failed',
  id,
  code: isAttuneError(err) ? err.code : 'internal_error',
  message: (err as Error)?.message ?? String(err),
});

port.on('message', (m: ToThread) => {
  switch (m.type) {
    case 'init':
      void (async () => {
        try {
          await recognizerFor(m.defaultModel);
          if (m.alignment) aligner = clockAlign(await WordAligner.load(), stages, 'final_alignment');
          queue = new RecognitionQueue({ recognizer: recognizerFor, aligner });
          send({ type: 'ready' });
        } catch (err) {
          send(failure(null, err));
        }
      })();
      break;
    case 'final':
      finalAudio.add(m.samples);
      queue!.final({ ...m.segment, samples: m.samples }, m.model).then(
        (transcript) => {
          stages.add('final_total', transcript.computeMs);
          send({ type: 'final', id: m.id, transcript });
        },
        (err) => send(failure(m.id, err)),
      );
      break;
    case 'partial':
      void queue!.partial(m.stream, m.samples, m.model).then((r) => send({ type: 'partial', id: m.id, text: r?.text ?? null, confidence: r?.confidence ?? null }));
      break;
    case 'stage-times':
      send({ type: 'stage-times', id: m.id, stages: stages.read(m.reset) });
      break;
    case 'close':
      void (async () => {
        await queue?.idle();
        for (const r of recognizers.values()) await (await r).release().catch(() => undefined);
        aligner?.release();
        port.close();
        process.exit(0);
      })();
      break;
  }
});
