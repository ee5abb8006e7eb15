// The speech audio ingest routes: file uploads and the live audio socket (the upload
// status route is registered by the composition root, cli/server.ts, where ingest or API runs). Registered where the ingest role runs and the speech repositories are wired.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../http/context.js';
import { DEFAULT_UPLOAD_LIMITS, registerSpeechUploadRoutes } from './upload.js';
import { registerLiveAudioRoutes } from './live-socket.js';
import { registerSpeechToTextRoute } from './stt.js';

export async function registerSpeechIngestRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // Speech to text keeps nothing: it needs the recogniser, not the speech repositories.
  await registerSpeechToTextRoute(app, ctx);
  if (!ctx.speechSessions || !ctx.speechUploads) {
    ctx.log.warn('speech repositories are not wired: speech audio ingest routes are off');
    return;
  }
  await registerSpeechUploadRoutes(app, ctx, ctx.speechUploadLimits ?? DEFAULT_UPLOAD_LIMITS);
  await registerLiveAudioRoutes(app, ctx);
}
