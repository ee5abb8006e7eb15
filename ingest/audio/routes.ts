// The speech audio ingest routes: file uploads and the live audio socket (the upload
// status route is registered by the composition root, cli/server.ts, where ingest or API runs). Registered where the ingest role runs and the speech repositories are wired.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../http/context.js';
import { DEFAULT_UPLOAD_LIMITS, registerSpeechUploadRoutes } from './upload.js';
import { registerLiveAudioRoutes } from './live-socket.js';

export async function registerSpeechIngestRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.speechSessions || !ctx.speechUploads) {
    ctx.log.warn('speech repositories are not wired: speech audio ingest routes are off');
    return;
  }
  await registerSpeechUploadRoutes(app, ctx, ctx.speechUploadLimits ?? DEFAULT_UPLOAD_LIMITS);
  await registerLiveAudioRoutes(app, ctx);
}
