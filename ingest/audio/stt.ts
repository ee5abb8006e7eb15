// POST /v1/speech/stt: the communication platform's synchronous speech-to-text (its document's
// POST /api/v1/speech/stt, ../shared/seeds/003). A multipart audio file of at most 60 s in any
// accepted format (decoders/) → 200 {text, language, confidence, duration_seconds,
// words[{word, start, end}]} in seconds, plus Attune's own model, segments and each word's
// timing_method. Longer audio is a 413 that points at the upload route, which takes hours.
//
// The file is decoded and resampled to 16 kHz as it arrives (at most 60 s of 16 kHz floats,
// 3.8 MB, are kept); the recognition runs in this process through ctx.speechToText
// (pipelines/speech/stt.ts says why not through the worker). An ingest route: it takes audio in
// as the upload does and shares its decoding, and needs no ClickHouse.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { AttuneError } from '../../lib/errors.js';
import type { AppContext, SpeechToTextService } from '../../http/context.js';
import { errorBodySchema } from '../../http/errors.js';
import { documentedBody } from '../../http/openapi.js';
import { discardRestOfBody } from '../../http/refused-body.js';
import { AudioFileDecoder, ACCEPTED_AUDIO_FORMATS, ACCEPTED_AUDIO_TYPES } from './decoders/index.js';
import { createResampler, type Resampler } from './resample.js';
import { BUS_SAMPLE_RATE } from './publisher.js';
import { SpeechScopes } from './speech-access.js';
import { fileChunks, multipartParts } from './upload.js';

export interface SttLimits {
  /** Longest audio, seconds (413 above, pointing at the upload route). */
  maxDurationS: number;
  /** Largest file, bytes: 60 s of 48 kHz stereo float32 WAV is 23 MB. */
  maxBytes: number;
}

export const DEFAULT_STT_LIMITS: SttLimits = { maxDurationS: 60, maxBytes: 32 * 1024 * 1024 };

const UPLOAD_ROUTE = '/v1/speech-sessions/{id}/upload';

const formSchema = {
  type: 'object',
  properties: {
    file: {
      type: 'string',
      format: 'binary',
      contentMediaType: 'application/octet-stream',
      description: `The audio (a file part; field "file", or "audio"): ${ACCEPTED_AUDIO_FORMATS.join(', ')} (${ACCEPTED_AUDIO_TYPES.join(', ')}), found from its first bytes.`,
    },
  },
  required: ['file'],
};

const resultSchema = {
  type: 'object',
  properties: {
    text: { type: 'string', description: 'The transcript; empty when nothing was said.' },
    language: { type: 'string', enum: ['en'], description: 'Language of the transcript (the recogniser is English).' },
    confidence: {
      type: ['number', 'null'],
      description: "The recogniser's confidence, 0..1: the mean of the words' confidences (each the geometric mean of its tokens' probabilities); null when no word was recognised.",
    },
    duration_seconds: { type: 'number', description: 'Length of the audio, seconds.' },
    words: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          word: { type: 'string', description: 'As recognised, without the punctuation around it (the document\'s "Hello" of "Hello, welcome").' },
          text: { type: 'string', description: 'As recognised, with its punctuation ("Hello,").' },
          start: { type: 'number', description: 'Seconds from the start of the audio.' },
          end: { type: 'number' },
          timing_method: { type: 'string', enum: ['forced_alignment', 'syllable_estimate'], description: 'How the times were found.' },
        },
        required: ['word', 'start', 'end'],
      },
    },
    model: { type: 'string', description: 'Recognition model.' },
    segments: {
      type: 'array',
      description: 'Utterances (voice activity, pauses under 1.5 s joined), with their text.',
      items: { type: 'object', properties: { start: { type: 'number' }, end: { type: 'number' }, text: { type: 'string' } } },
    },
  },
  required: ['text', 'language', 'confidence', 'duration_seconds', 'words'],
} as const;

export async function registerSpeechToTextRoute(app: FastifyInstance, ctx: AppContext, limits: SttLimits = DEFAULT_STT_LIMITS): Promise<void> {
  const stt = ctx.speechToText;
  if (!stt) return;
  app.addHook('onClose', async () => stt.close());
  await app.register(async (scope) => {
    if (!scope.hasRequestDecorator('parts')) await scope.register(multipart);
    scope.post(
      '/v1/speech/stt',
      {
        config: { auth: { scope: SpeechScopes.write }, swaggerTransform: documentedBody(formSchema) },
        schema: {
          tags: ['speech'],
          summary: `Speech to text, synchronously: an audio file of at most ${limits.maxDurationS} s → transcript with word times in seconds.`,
          operationId: 'speechToText',
          description:
            `Multipart, field \`file\` (or \`audio\`): ${ACCEPTED_AUDIO_FORMATS.join(', ')}, ${limits.maxDurationS} s and ${Math.round(limits.maxBytes / 1048576)} MB at most. ` +
            `Longer audio is 413 (too_long, upload_route): create a speech session and upload it to ${UPLOAD_ROUTE}. ` +
            'A broken or cut-off file is 400, another format 415 naming the accepted ones. Recognition is English (Moonshine) with forced-aligned word times. ' +
            'Requests are recognised one at a time per server; with several already waiting the answer is 503 (stt_busy) with Retry-After.',
          security: [{ bearerAuth: [] }],
          consumes: ['multipart/form-data'],
          response: { 200: resultSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
        },
      },
      async (req, reply) => {
        let samples: Float32Array;
        try {
          samples = await receiveAudio(req, limits);
        } catch (err) {
          // The rest of a refused body is read and dropped (bounded), so that a client still
          // sending it reads the answer (http/refused-body.ts).
          discardRestOfBody(req, reply);
          throw err;
        }
        try {
          return await stt.transcribe(samples);
        } catch (err) {
          const retry = (err as AttuneError).details?.[0]?.retry_after_s;
          if (typeof retry === 'number') void reply.header('retry-after', String(retry));
          throw err;
        }
      },
    );
  });
}

/** The file part, decoded and resampled to 16 kHz while it arrives. */
async function receiveAudio(req: FastifyRequest, limits: SttLimits): Promise<Float32Array> {
  if (!req.isMultipart()) {
    throw new AttuneError('unsupported_media_type', 'send the audio as multipart/form-data (field "file")', [
      { reason: 'not_multipart', content_type: req.headers['content-type'] ?? null },
    ]);
  }
  const parts = req.parts({ limits: { fileSize: limits.maxBytes, files: 1, fields: 8, fieldSize: 1024, parts: 10, headerPairs: 64 } });
  const uploadLimits = { maxBytes: limits.maxBytes, maxDurationS: limits.maxDurationS };
  let out: Float32Array | null = null;
  for await (const part of multipartParts(parts, uploadLimits)) {
    if (part.type !== 'file') continue; // text fields (a client's language, model…) are ignored
    if (part.fieldname !== 'file' && part.fieldname !== 'audio') {
      throw new AttuneError('validation_error', `unexpected file field "${part.fieldname}"; send the audio in field "file"`, [
        { field: part.fieldname, reason: 'unexpected_file_field' },
      ]);
    }
    if (out) throw new AttuneError('validation_error', 'send one file only', [{ field: 'file', reason: 'too_many_files' }]);
    out = await decodeTo16k(part.file, part.fieldname, limits, () => part.file.truncated);
  }
  if (!out) throw new AttuneError('validation_error', 'the audio file is missing: send it in field "file"', [{ field: 'file', reason: 'required' }]);
  return out;
}

async function decodeTo16k(file: AsyncIterable<Buffer>, field: string, limits: SttLimits, truncatedByLimit: () => boolean): Promise<Float32Array> {
  const tooLong = (max: number, declaredS: number | null) =>
    new AttuneError('payload_too_large', `audio is longer than ${max} s: for longer audio create a speech session (POST /v1/speech-sessions) and upload it to ${UPLOAD_ROUTE}`, [
      { field, reason: 'too_long', max_duration_s: max, ...(declaredS === null ? {} : { declared_duration_s: Math.round(declaredS * 1000) / 1000 }), upload_route: UPLOAD_ROUTE },
    ]);
  const decoder = new AudioFileDecoder({ maxBytes: limits.maxBytes, maxDurationS: limits.maxDurationS, field, tooLong });
  const collected = new Collector(Math.ceil(limits.maxDurationS * BUS_SAMPLE_RATE) + BUS_SAMPLE_RATE);
  let resampler: Resampler | null = null;
  const take = (pieces: Float32Array[]) => {
    for (const p of pieces) {
      resampler ??= createResampler(decoder.info!.sampleRate, BUS_SAMPLE_RATE);
      collected.add(resampler.push(p));
    }
  };
  try {
    for await (const chunk of fileChunks(file)) take(await decoder.push(chunk, take));
    if (truncatedByLimit()) {
      throw new AttuneError('payload_too_large', `file is larger than ${limits.maxBytes} bytes`, [{ field, reason: 'too_large', max_bytes: limits.maxBytes }]);
    }
    take(await decoder.end());
  } finally {
    decoder.free();
  }
  if (resampler) collected.add((resampler as Resampler).flush());
  return collected.samples();
}

/** Samples appended into one array of bounded capacity (no copy per piece beyond the one). */
class Collector {
  private buf: Float32Array;
  private length = 0;
  constructor(private readonly capacity: number) {
    this.buf = new Float32Array(Math.min(capacity, 16 * BUS_SAMPLE_RATE));
  }
  add(p: Float32Array): void {
    if (this.length + p.length > this.buf.length) {
      const size = Math.min(this.capacity, Math.max(this.buf.length * 2, this.length + p.length));
      if (size < this.length + p.length) throw new Error('Collector: over capacity');
      const grown = new Float32Array(size);
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    }
    this.buf.set(p, this.length);
    this.length += p.length;
  }
  samples(): Float32Array {
    return this.buf.subarray(0, this.length);
  }
}

export type { SpeechToTextService };
