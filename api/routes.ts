// Every route of the API role (history, analytics, live fan-out, speech results), registered
// on a server the composition root (cli/server.ts) builds.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../http/context.js';
import { registerSessionRoutes } from './sessions.js';
import { registerCoherenceRoutes } from './coherence.js';
import { registerLiveRoutes } from './live.js';
import { registerSpeechSessionRoutes } from './speech-sessions.js';
import { registerSpeechResultRoutes } from './speech-results.js';
import { registerSpeechLiveRoutes } from './speech-live.js';
import { registerSpeechSocketIo } from './speech-socketio.js';
import { registerSpeechReportRoutes } from './speech-reports.js';
import { registerSpeechSearchRoutes } from './speech-search.js';
import { registerSpeechProgressRoutes } from './speech-progress.js';
import { registerUserRoutes } from './users.js';
import { registerMeshRoutes } from './mesh-sessions.js';
import { registerOrgAnalyticsRoutes } from './org-analytics.js';
import { registerApiKeyRoutes } from './api-keys.js';
import { registerWebhookRoutes } from './webhooks.js';

export async function registerApiRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  await registerSessionRoutes(app, ctx);
  await registerCoherenceRoutes(app, ctx);
  await registerUserRoutes(app, ctx);
  await registerLiveRoutes(app, ctx);
  // The speech API where the role wires its repository (and its live hub for the stream).
  if (ctx.speechSessions) {
    await registerSpeechSessionRoutes(app, ctx);
    await registerSpeechResultRoutes(app, ctx);
    await registerSpeechReportRoutes(app, ctx);
    await registerSpeechSearchRoutes(app, ctx);
    await registerSpeechProgressRoutes(app, ctx);
    if (ctx.speechLive) {
      await registerSpeechLiveRoutes(app, ctx);
      // The same events to socket.io clients (the speech-coaching document's io(url, {auth: {token}})).
      await registerSpeechSocketIo(app, ctx);
    }
  }
  if (ctx.mesh) await registerMeshRoutes(app, ctx);
  if (ctx.orgAnalytics && ctx.clickhouse) await registerOrgAnalyticsRoutes(app, ctx);
  // API keys and webhooks where the role wires their repositories (cli/roles.ts).
  await registerApiKeyRoutes(app, ctx);
  await registerWebhookRoutes(app, ctx);
}
