// Speech file uploads: `POST /v1/speech-sessions/{id}/upload` takes an audio file (WAV, MP3,
// Ogg Opus or WebM Opus, told apart by their first bytes: decoders/) as multipart (field
// `file`, optional JSON field `metadata`) and streams it onto the bus, and
// `GET /v1/speech-sessions/{id}/upload/{upload_id}/status` reports the job.
//
// The file is never held whole: each chunk of the multipart body goes through the format's
// decoder (mono samples at the file's rate), the resampler and the framer, and the next chunk is read only once the bus has taken the
// frames of this one, so the HTTP body is consumed as fast as the bus accepts audio. The
// speech worker does the analysis and moves the upload and session rows on from there.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import multipart, { type MultipartFile, type MultipartValue } from '@fastify/multipart';
import { AttuneError, isAttuneError } from '../../lib/errors.js';
import { iso } from '../../lib/time.js';
import { type Principal } from '../../lib/principal.js';
import type { AppContext } from '../../http/context.js';
import { errorBodySchema } from '../../http/errors.js';
import { docEnvelopeSchema, withDocEnvelope } from '../../http/doc-envelope.js';
import { documentedBody } from '../../http/openapi.js';
import { discardRestOfBody } from '../../http/refused-body.js';
import { invalidText } from '../../lib/text-limits.js';
import { principalOf } from '../../http/auth-plugin.js';
import type { SpeechSession, SpeechUpload } from '../../store/postgres/speech-sessions-repo.js';
import { AudioFileDecoder, ACCEPTED_AUDIO_FORMATS, ACCEPTED_AUDIO_TYPES, type DecodedAudioInfo } from './decoders/index.js';
import { checkStoredJson, defaultStoredJsonLimits, jsonTextDepth, storedJsonTooDeep, type StoredJsonLimits } from '../../lib/json-limits.js';
import { SpeechAudioPublisher, UploadFraming, samplesAt16k } from './publisher.js';
import { SpeechScopes, audioConflict, speechRepos, takesAudio, type SpeechRepos } from './speech-access.js';

export interface SpeechUploadLimits {
  /** Largest file accepted, bytes (413 above). */
  maxBytes: number;
  /** Longest audio accepted, seconds (413 above). */
  maxDurationS: number;
}

export const DEFAULT_UPLOAD_LIMITS: SpeechUploadLimits = { maxBytes: 200 * 1024 * 1024, maxDurationS: 4 * 3600 };
/**
 * The metadata field is a small JSON object, not a second payload: a field over this many bytes
 * is cut by the multipart parser (413 too_large); what is stored is at most
 * ATTUNE_MAX_STORED_JSON_BYTES (16 KB) of JSON, 32 levels deep (400 json_too_large/json_too_deep).
 */
export const MAX_METADATA_BYTES = 64 * 1024;

const sessionIdParam = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' } as const;

/**
 * The multipart form, for the OpenAPI document only: the handler reads the parts as a stream
 * (a schema here would make Fastify validate a body it never builds).
 */
const uploadFormSchema = {
  type: 'object',
  properties: {
    file: {
      type: 'string',
      format: 'binary',
      contentMediaType: 'application/octet-stream',
      description: `The audio file (a file part, with a filename): ${ACCEPTED_AUDIO_FORMATS.join(', ')} (${ACCEPTED_AUDIO_TYPES.join(', ')}). The format is read from the first bytes, whatever the part's content type.`,
    },
    metadata: { type: 'string', contentMediaType: 'application/json', maxLength: MAX_METADATA_BYTES, description: 'Optional: a JSON object stored with the upload (at most ATTUNE_MAX_STORED_JSON_BYTES, 16 KB, and 32 levels deep).' },
  },
  required: ['file'],
};

const acceptedResponse = {
  type: 'object',
  properties: {
    upload_id: { type: 'string' },
    session_id: { type: 'string' },
    status: { type: 'string', enum: ['processing'] },
    status_url: { type: 'string' },
    ...docEnvelopeSchema({
      type: 'object',
      properties: {
        uploadId: { type: 'string' },
        status: { type: 'string', enum: ['processing', 'completed', 'failed'], description: 'Of the analysis: the file is all received when this answer comes.' },
        progress: { type: 'number', description: 'Analysis done so far, percent 0..100 (it runs while the file streams in).' },
        estimatedTime: { type: 'number', description: "Seconds left: the worker's estimate, else audio duration / UPLOAD_SPEED_ESTIMATE (8x real time)." },
      },
    }),
  },
} as const;

/** Real-time factor assumed for an upload's time left before the worker has measured its own (the speech bench's floor for tiny, README). */
export const UPLOAD_SPEED_ESTIMATE = 8;

/**
 * The speech-coaching document's upload answers, from the upload row. The document has two
 * statuses: `status` of the transfer (uploading until the file is all in, then completed; failed
 * when it failed while arriving) and `processingStatus` of the analysis (the row's status).
 * `progress` is the transfer's percent; the analysis's is `processingProgress`.
 */
export function docUploadStatus(u: SpeechUpload) {
  // The route writes size_bytes once the whole file is in (finish()); the worker moves the stage on.
  const received = u.sizeBytes > 0 || u.stage !== 'receiving';
  const failedArriving = u.status === 'failed' && u.stage === 'receiving';
  return {
    uploadId: u.id,
    status: failedArriving ? 'failed' : received ? 'completed' : 'uploading',
    progress: received && !failedArriving ? 100 : 0,
    fileSize: u.sizeBytes,
    uploadedBytes: received ? u.sizeBytes : 0,
    processingStatus: u.status,
    processingProgress: Math.round(u.progress * 1000) / 10,
    estimatedTime: docEstimatedTime(u),
  };
}

function docEstimatedTime(u: SpeechUpload): number | null {
  if (u.status === 'completed' || u.status === 'failed') return 0;
  if (u.etaS !== null) return Math.round(u.etaS * 10) / 10;
  return u.audioDurationS === null ? null : Math.round(((u.audioDurationS * (1 - u.progress)) / UPLOAD_SPEED_ESTIMATE) * 10) / 10;
}

const statusResponse = {
  type: 'object',
  properties: {
    upload_id: { type: 'string' },
    session_id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'processing', 'completed', 'failed'] },
    stage: { type: 'string' },
    progress: { type: 'number', description: 'Share of the job done, 0..1.' },
    eta_s: { type: ['number', 'null'], description: 'Estimated seconds left; null when not estimated.' },
    file_name: { type: 'string' },
    size_bytes: { type: 'integer' },
    encoding: { type: 'string', description: "The file's audio coding: pcm16 or float32 (WAV), mp3, opus (Ogg or WebM); empty before the header was read." },
    channel_count: { type: 'integer' },
    sample_rate_hz: { type: 'integer' },
    audio_duration_s: { type: ['number', 'null'] },
    error: {
      type: ['object', 'null'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    completed_at: { type: ['string', 'null'], format: 'date-time' },
    ...docEnvelopeSchema({
      type: 'object',
      properties: {
        uploadId: { type: 'string' },
        status: { type: 'string', enum: ['uploading', 'completed', 'failed'], description: 'Of the transfer.' },
        progress: { type: 'number', description: 'Of the transfer, percent: 0 while the file arrives (its size is not known before), 100 once in.' },
        fileSize: { type: 'integer', description: 'Bytes of the file part (0 until it is all in).' },
        uploadedBytes: { type: 'integer' },
        processingStatus: { type: 'string', enum: ['queued', 'processing', 'completed', 'failed'] },
        processingProgress: { type: 'number', description: 'Of the analysis, percent.' },
        estimatedTime: { type: ['number', 'null'], description: 'Seconds of analysis left; null while unknown.' },
      },
    }),
  },
} as const;

export function uploadStatusJson(u: SpeechUpload) {
  return {
    upload_id: u.id,
    session_id: u.sessionId,
    status: u.status,
    stage: u.stage,
    progress: u.progress,
    eta_s: u.etaS,
    file_name: u.fileName,
    size_bytes: u.sizeBytes,
    encoding: u.encoding,
    channel_count: u.channelCount,
    sample_rate_hz: u.sampleRateHz,
    audio_duration_s: u.audioDurationS,
    error: u.errorCode ? { code: u.errorCode, message: u.errorMessage } : null,
    created_at: iso(u.createdAt),
    updated_at: iso(u.updatedAt),
    completed_at: u.completedAt === null ? null : iso(u.completedAt),
  };
}

export const statusUrl = (sessionId: string, uploadId: string) =>
  `/v1/speech-sessions/${encodeURIComponent(sessionId)}/upload/${encodeURIComponent(uploadId)}/status`;

export async function registerSpeechUploadRoutes(app: FastifyInstance, ctx: AppContext, limits: SpeechUploadLimits = DEFAULT_UPLOAD_LIMITS): Promise<void> {
  // Its own scope: the multipart parser applies to these routes only. Limits are given per
  // request (req.parts), so they hold whoever else registers the plugin.
  await app.register(async (scope) => {
    if (!scope.hasRequestDecorator('parts')) await scope.register(multipart);

    scope.post<{ Params: { id: string } }>(
      '/v1/speech-sessions/:id/upload',
      {
        config: { auth: { scope: SpeechScopes.write }, swaggerTransform: documentedBody(uploadFormSchema) },
        links: { 202: { status: { operationId: 'getSpeechUploadStatus', parameters: { id: '$response.body#/session_id', upload_id: '$response.body#/upload_id' } } } },
        schema: {
          tags: ['speech'],
          summary: 'Upload an audio file (WAV, MP3, Ogg Opus or WebM Opus; multipart: field `file`, optional JSON field `metadata`) to a speech session.',
          operationId: 'uploadSpeechAudio',
          description:
            `${ACCEPTED_AUDIO_FORMATS.join(', ')}; mono or stereo, ${Math.round(limits.maxBytes / 1048576)} MB and ${limits.maxDurationS} s at most. ` +
            'The format is found from the first bytes (not the content type) and decoded in Node (WebAssembly decoders), then resampled to 16 kHz. ' +
            'The file is streamed and processed as it arrives; the answer (202) comes once it is all received. ' +
            'A broken or cut-off file is 400, another format (MP4/AAC, FLAC, …) or codec 415 naming the accepted ones, a file too large or too long 413, a session that already has audio 409.',
          security: [{ bearerAuth: [] }],
          consumes: ['multipart/form-data'],
          params: { type: 'object', properties: { id: sessionIdParam }, required: ['id'] },
          response: { 202: acceptedResponse, '4xx': errorBodySchema, '5xx': errorBodySchema },
        },
      },
      async (req, reply) => {
        const body = await receiveUpload(ctx, limits, req, reply);
        // The document's fields, from the row as the worker has it now (analysis runs while the file streams in).
        const row = await speechRepos(ctx).uploads.get(body.upload_id);
        const progress = row ? Math.round(row.progress * 1000) / 10 : 0;
        const data = { uploadId: body.upload_id, status: row?.status === 'completed' || row?.status === 'failed' ? row.status : 'processing', progress, estimatedTime: row ? (docEstimatedTime(row) ?? 0) : 0 };
        return reply.status(202).send(withDocEnvelope(body, data, req, ctx.clock()));
      },
    );

  });
}

/**
 * The status of an upload's processing job. A read of ClickHouse, so it is served where the API
 * runs (and by an ingest-only process, so a client that uploaded there can follow its job).
 */
export async function registerSpeechUploadStatusRoute(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { id: string; upload_id: string } }>(
    '/v1/speech-sessions/:id/upload/:upload_id/status',
    {
      config: { auth: { scope: SpeechScopes.read } },
      schema: {
        tags: ['speech'],
        summary: 'Progress of an uploaded file: status, stage, progress, estimated time left, error.',
        operationId: 'getSpeechUploadStatus',
        security: [{ bearerAuth: [] }],
        params: { type: 'object', properties: { id: sessionIdParam, upload_id: sessionIdParam }, required: ['id', 'upload_id'] },
        response: { 200: statusResponse, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const repos = speechRepos(ctx);
      await repos.sessions.getVisible(p, req.params.id);
      const upload = await repos.uploads.get(req.params.upload_id);
      if (!upload || upload.sessionId !== req.params.id) {
        throw new AttuneError('not_found', `upload ${req.params.upload_id} not found`, [{ field: 'upload_id', reason: 'not_found' }]);
      }
      return withDocEnvelope(uploadStatusJson(upload), docUploadStatus(upload), req, ctx.clock());
    },
  );
}

/** Reads the multipart body, streaming the file onto the bus; returns the 202 body. */
async function receiveUpload(ctx: AppContext, limits: SpeechUploadLimits, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const startedAt = ctx.clock();
  const p = principalOf(req);
  const repos = speechRepos(ctx);
  const session = await repos.sessions.getVisible(p, req.params.id);
  // Refused before a byte of the body is read; claimForAudio checks again, atomically.
  if (!takesAudio(session)) throw audioConflict(session);
  if (!req.isMultipart()) {
    throw new AttuneError('unsupported_media_type', 'send the file as multipart/form-data (field "file", optional field "metadata")', [
      { reason: 'not_multipart', content_type: req.headers['content-type'] ?? null },
    ]);
  }
  const job = new UploadJob(ctx, repos, limits, p, session, startedAt);
  const stored = defaultStoredJsonLimits(ctx.maxStoredJsonBytes);
  try {
    const parts = req.parts({
      limits: { fileSize: limits.maxBytes, files: 1, fields: 8, fieldSize: Math.max(MAX_METADATA_BYTES, stored.maxBytes), parts: 10, headerPairs: 64 },
    });
    for await (const part of multipartParts(parts, limits)) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          throw new AttuneError('validation_error', `unexpected file field "${part.fieldname}"; send the audio file in field "file"`, [
            { field: part.fieldname, reason: 'unexpected_file_field' },
          ]);
        }
        // A NUL in the file name (RFC 5987 filename*=UTF-8''%00) would reach PostgreSQL as a 500.
        if (part.filename?.includes('\0')) throw invalidText('file');
        await job.receiveFile(part);
      } else if (part.fieldname === 'metadata') {
        await job.setMetadata(parseMetadata(part, stored));
      } else if (part.fieldname === 'file') {
        throw new AttuneError('validation_error', 'field "file" must be a file part (with a filename)', [{ field: 'file', reason: 'not_a_file' }]);
      }
      // Other text fields are ignored, as form clients add their own.
    }
    if (!job.fileReceived) throw new AttuneError('validation_error', 'the audio file is missing: send it in field "file"', [{ field: 'file', reason: 'required' }]);
    return await job.finish();
  } catch (err) {
    // The rest of a refused body is read and dropped (bounded), so that a client still
    // sending it reads the answer (http/refused-body.ts).
    discardRestOfBody(req, reply);
    throw await job.fail(err);
  }
}

/** The multipart parts, with the plugin's own errors turned into coded ones (also POST /v1/speech/stt's). */
export async function* multipartParts(parts: AsyncIterableIterator<MultipartFile | MultipartValue>, limits: SpeechUploadLimits): AsyncGenerator<MultipartFile | MultipartValue> {
  for (;;) {
    let next: IteratorResult<MultipartFile | MultipartValue>;
    try {
      next = await parts.next();
    } catch (err) {
      throw multipartError(err, limits);
    }
    if (next.done) return;
    yield next.value;
  }
}

function multipartError(err: unknown, limits: SpeechUploadLimits): AttuneError {
  if (isAttuneError(err)) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return fileTooLarge(limits);
    case 'FST_FILES_LIMIT':
      return new AttuneError('validation_error', 'send one file only', [{ field: 'file', reason: 'too_many_files' }]);
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new AttuneError('payload_too_large', 'too many form fields', [{ reason: 'too_many_fields' }]);
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return invalidMetadata('not valid JSON');
    case 'FST_PROTO_VIOLATION':
      return new AttuneError('validation_error', (err as Error).message, [{ reason: 'invalid_field_name' }]);
  }
  return new AttuneError('validation_error', `malformed multipart body: ${(err as Error).message}`, [{ reason: 'malformed_multipart' }]);
}

const fileTooLarge = (limits: SpeechUploadLimits) =>
  new AttuneError('payload_too_large', `file is larger than ${limits.maxBytes} bytes`, [{ field: 'file', reason: 'too_large', max_bytes: limits.maxBytes }]);

const invalidMetadata = (why: string) =>
  new AttuneError('validation_error', `field "metadata" must be a JSON object (${why})`, [{ field: 'metadata', reason: 'invalid_metadata', message: why }]);

function parseMetadata(part: MultipartValue, stored: StoredJsonLimits): Record<string, unknown> {
  if (part.valueTruncated) {
    const max = Math.max(MAX_METADATA_BYTES, stored.maxBytes);
    throw new AttuneError('payload_too_large', `field "metadata" is larger than ${max} bytes`, [{ field: 'metadata', reason: 'too_large', max_bytes: max }]);
  }
  let value: unknown = part.value;
  // Sent as application/json the plugin has parsed it already; as text it is parsed here,
  // after a depth scan (nothing nested thousands deep is built).
  if (typeof value === 'string') {
    if (jsonTextDepth(value, stored.maxDepth) > stored.maxDepth) throw storedJsonTooDeep('metadata', stored.maxDepth);
    try {
      value = JSON.parse(value);
    } catch {
      throw invalidMetadata('not valid JSON');
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidMetadata('not an object');
  checkStoredJson(value, 'metadata', stored);
  return value as Record<string, unknown>;
}

/**
 * One upload: created when the file part starts, the session claimed once the file's header is
 * read (so a broken file never takes the session), frames published while the file arrives.
 */
class UploadJob {
  fileReceived = false;
  private upload: SpeechUpload | null = null;
  private metadata: Record<string, unknown> | null = null;
  private decoder: AudioFileDecoder | null = null;
  private publisher: SpeechAudioPublisher | null = null;
  private claimed = false;
  /** Another process ended the stream (this one could not renew its lease): nothing more may go out. */
  private leaseLost = false;

  constructor(
    private readonly ctx: AppContext,
    private readonly repos: SpeechRepos,
    private readonly limits: SpeechUploadLimits,
    private readonly principal: Principal,
    private readonly session: SpeechSession,
    private readonly startedAt: number,
  ) {}

  async setMetadata(metadata: Record<string, unknown>): Promise<void> {
    this.metadata = metadata;
    // After the file the row exists already: record it there.
    if (this.upload) this.upload = await this.repos.uploads.update(this.upload.id, { metadata });
  }

  async receiveFile(part: MultipartFile): Promise<void> {
    if (this.fileReceived) throw new AttuneError('validation_error', 'send one file only', [{ field: 'file', reason: 'too_many_files' }]);
    this.fileReceived = true;
    this.upload = await this.repos.uploads.create({
      sessionId: this.session.id,
      orgId: this.session.orgId,
      userId: this.session.userId,
      fileName: part.filename ?? '',
      metadata: this.metadata ?? undefined,
    });
    const decoder = (this.decoder = new AudioFileDecoder({ maxBytes: this.limits.maxBytes, maxDurationS: this.limits.maxDurationS, field: 'file' }));
    try {
      for await (const chunk of fileChunks(part.file)) await this.publish(await decoder.push(chunk, (pieces) => this.publish(pieces)));
      // The multipart limit cuts the file short without an error of its own.
      if (part.file.truncated) throw fileTooLarge(this.limits);
      await this.publish(await decoder.end());
    } finally {
      decoder.free();
    }
  }

  /** Samples decoded: the session is claimed at the first (the header is read by then), then they go to the bus. */
  private async publish(pieces: Float32Array[]): Promise<void> {
    const decoder = this.decoder!;
    if (!this.publisher && decoder.info) await this.start(decoder.info, decoder.bytesReceived);
    this.checkLease();
    for (const samples of pieces) await this.publisher!.write(samples);
  }

  private checkLease(): void {
    if (this.leaseLost) {
      throw new AttuneError('unavailable', 'the upload was ended: this server could not renew its claim in time; upload the file again', [{ reason: 'stream_lost' }]);
    }
  }

  /** Header read (the decoder has refused what the pipeline cannot take): claim the session, describe the file. */
  private async start(format: DecodedAudioInfo, bytesSoFar: number): Promise<void> {
    const encoding = format.encoding;
    const sampleFrames = format.declaredFrames;
    const upload = this.upload!;
    await this.repos.sessions.claimForAudio(this.session.id, { source: 'upload', startedAt: this.startedAt, sampleRateHz: format.sampleRate, streamId: upload.id, leaseMs: this.ctx.audioLeases?.leaseMs });
    this.claimed = true;
    this.ctx.audioLeases?.hold(upload.id, () => {
      this.leaseLost = true;
    });
    this.upload = await this.repos.uploads.update(upload.id, {
      status: 'processing',
      stage: 'receiving',
      sizeBytes: bytesSoFar,
      encoding,
      channelCount: format.channels,
      sampleRateHz: format.sampleRate,
      audioDurationS: sampleFrames === null ? null : sampleFrames / format.sampleRate,
    });
    this.publisher = new SpeechAudioPublisher(
      { bus: this.ctx.bus, topics: this.ctx.topics, codec: this.ctx.codec },
      {
        sessionId: this.session.id,
        orgId: this.session.orgId,
        userId: this.session.userId,
        streamId: upload.id,
        source: 'upload',
        audioStartedAt: this.startedAt,
        sourceSampleRateHz: format.sampleRate,
        expectedSamples: sampleFrames === null ? null : samplesAt16k(sampleFrames, format.sampleRate),
        settingsJson: JSON.stringify(this.session.settings ?? {}),
      },
      UploadFraming,
    );
  }

  /**
   * The whole body is in: rows first, then the last frame, so the worker (which completes
   * the rows after the last frame) never has its progress overwritten by this route.
   */
  async finish() {
    const upload = this.upload!;
    const decoder = this.decoder!;
    const durationS = decoder.durationS;
    await this.repos.uploads.update(upload.id, { sizeBytes: decoder.bytesReceived, audioDurationS: durationS });
    this.checkLease();
    await this.repos.sessions.update(this.session.id, { endedAt: this.ctx.clock(), audioDurationS: durationS });
    await this.publisher!.end();
    // The audio is all on the bus: the claim ends (the session stays 'processing').
    await this.repos.sessions.releaseAudio(this.session.id, { outcome: 'ended', streamId: upload.id });
    this.ctx.audioLeases?.drop(upload.id);
    this.ctx.log.info(
      { session_id: this.session.id, upload_id: upload.id, format: decoder.format, bytes: decoder.bytesReceived, duration_s: durationS, frames: this.publisher!.framesPublished },
      'speech upload received',
    );
    return { upload_id: upload.id, session_id: this.session.id, status: 'processing' as const, status_url: statusUrl(this.session.id, upload.id) };
  }

  /**
   * Ends a failed upload cleanly: the stream (if any frame went out) gets a last frame with
   * the reason so the worker drops it, the upload is marked failed, and the session too when
   * this upload had claimed it (it can take a new upload then). Returns the error to answer.
   */
  async fail(err: unknown): Promise<AttuneError> {
    const coded = isAttuneError(err) ? err : new AttuneError('internal_error', 'internal error');
    if (!isAttuneError(err)) this.ctx.log.error({ err, session_id: this.session.id }, 'speech upload failed');
    const reason = String(coded.details[0]?.reason ?? coded.code);
    const now = this.ctx.clock();
    if (this.upload) this.ctx.audioLeases?.drop(this.upload.id);
    const steps: Array<[string, () => Promise<unknown>]> = [];
    let streamEnded = true;
    if (this.publisher && !this.publisher.ended) {
      steps.push([
        'abort stream',
        () =>
          this.publisher!.abort(reason).catch((abortErr) => {
            streamEnded = false;
            throw abortErr;
          }),
      ]);
    }
    if (this.upload) {
      const id = this.upload.id;
      steps.push(['mark upload failed', () => this.repos.uploads.update(id, { status: 'failed', errorCode: coded.code, errorMessage: coded.message, completedAt: now })]);
    }
    // A stream another process ended (its lease passed) was failed with its session there; the
    // session may have taken a new stream since, which this late write must not fail. A stream
    // whose abort the bus did not take keeps its claim, unrenewed: failing the session would
    // release it and leave the stream open on the bus; the lease sweep ends both instead.
    if (this.claimed && !this.leaseLost) {
      steps.push([
        'mark session failed',
        async () => {
          if (streamEnded) await this.repos.sessions.update(this.session.id, { status: 'failed', endedAt: now });
          else this.ctx.log.warn({ session_id: this.session.id }, 'speech upload: the abort was not published; the stream lease will end it and fail the session');
        },
      ]);
    }
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (stepErr) {
        this.ctx.log.error({ err: stepErr, session_id: this.session.id }, `speech upload: could not ${what}`);
      }
    }
    if (coded.statusCode < 500) {
      this.ctx.log.info({ session_id: this.session.id, upload_id: this.upload?.id, code: coded.code, reason, user_id: this.principal.userId }, 'speech upload refused');
    }
    return coded;
  }
}

/** The file part's bytes; the body ending early (client gone, broken form) is a coded 400. */
export async function* fileChunks(file: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = file[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await it.next();
      } catch (err) {
        throw new AttuneError('validation_error', 'the upload ended before the file was complete', [
          { field: 'file', reason: 'truncated_upload', cause: (err as Error).message },
        ]);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Stopping early (a refusal) destroys the part's stream.
    await it.return?.();
  }
}
