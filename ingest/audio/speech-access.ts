// Who may send or read a speech session's audio: the speech scopes, the tenant check on the
// session, and the repositories the audio ingest needs from the application context.
import { AttuneError } from '../../lib/errors.js';
import { Scopes, type Scope } from '../../lib/principal.js';
import type { AppContext } from '../../http/context.js';
import type { SpeechSession, SpeechSessionsRepository, SpeechUploadsRepository } from '../../store/postgres/speech-sessions-repo.js';

/** Scopes of the speech routes: sending audio, and reading what became of it. */
export const SpeechScopes: { write: Scope; read: Scope } = { write: Scopes.writeSpeech, read: Scopes.readSpeech };

export interface SpeechRepos {
  sessions: SpeechSessionsRepository;
  uploads: SpeechUploadsRepository;
}

/** The speech repositories; a server wired without them answers 503 rather than crash. */
export function speechRepos(ctx: AppContext): SpeechRepos {
  if (!ctx.speechSessions || !ctx.speechUploads) {
    throw new AttuneError('unavailable', 'speech sessions are not configured on this server');
  }
  return { sessions: ctx.speechSessions, uploads: ctx.speechUploads };
}

/** Whether a session may still take audio (claimForAudio has the final word). */
export const takesAudio = (s: SpeechSession): boolean => s.status === 'created' || s.status === 'failed';

export function audioConflict(s: SpeechSession): AttuneError {
  return new AttuneError('conflict', 'session already has audio', [{ reason: 'audio_exists', message: `status is ${s.status}`, status: s.status, source: s.source }]);
}
