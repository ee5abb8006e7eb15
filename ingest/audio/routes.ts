// The speech audio ingest routes: file uploads (with their status) and the live audio
// socket. Registered where the ingest role runs and the speech repositories are wired.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../api/context.js';
import { DEFAULT_UPLOAD_LIMITS, registerSpeechUploadRoutes, registerSpeechUploadStatusRoute } from './upload.js';
import { registerLiveAudioRoutes } from './live-socket.js';

export async function registerSpeechIngestRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.speechSessions || !ctx.speechUploads) {
    ctx.log.warn('speech repositories are not wired: speech audio ingest routes are off');
    return;
  }
  await registerSpeechUploadRoutes(app, ctx, ctx.speechUploadLimits ?? DEFAULT_UPLOAD_LIMITS);
  await registerLiveAudioRoutes(app, ctx);
  // Where the API runs too, it registers the status route itself.
  if (!ctx.roles.api) await registerSpeechUploadStatusRoute(app, ctx);
}
