// The coded refusals every audio decoder shares: what Attune accepts, said the same way in each
// 415, and the 400s of a file that cannot be decoded or ends too soon.
import { AttuneError } from '../../../lib/errors.js';

/** The formats an audio upload (and POST /v1/speech/stt) takes, as a 415 names them. */
export const ACCEPTED_AUDIO_FORMATS = ['WAV (PCM16 or float32)', 'MP3', 'Ogg Opus', 'WebM Opus'] as const;

/** The content types of the accepted formats, for the OpenAPI document. */
export const ACCEPTED_AUDIO_TYPES = ['audio/wav', 'audio/mpeg', 'audio/ogg', 'audio/webm'] as const;

export const acceptedText = () => ACCEPTED_AUDIO_FORMATS.join(', ');

export function unsupportedFormat(field: string, format: string, why = ''): AttuneError {
  return new AttuneError('unsupported_media_type', `${format} files are not accepted${why}; send ${acceptedText()}`, [
    { field, reason: 'unsupported_format', format, accepted: [...ACCEPTED_AUDIO_FORMATS] },
  ]);
}

export function unsupportedCodec(field: string, container: string, codec: string): AttuneError {
  return new AttuneError('unsupported_media_type', `${container} audio in ${codec} is not accepted (only Opus); send ${acceptedText()}`, [
    { field, reason: 'unsupported_codec', container, codec, accepted: [...ACCEPTED_AUDIO_FORMATS] },
  ]);
}

/** At most this many channels (mixed to one). */
export const MAX_CHANNELS = 2;

export function unsupportedChannels(field: string, channels: number): AttuneError {
  return new AttuneError('unsupported_media_type', `${channels} channels; send mono or stereo`, [{ field, reason: 'unsupported_channel_count', channels }]);
}

export function undecodable(field: string, format: string, message: string, extra: Record<string, unknown> = {}): AttuneError {
  return new AttuneError('validation_error', `not a readable ${format} file: ${message}`, [{ field, reason: 'undecodable_audio', format, message, ...extra }]);
}

export function truncated(field: string, format: string, message: string, extra: Record<string, unknown> = {}): AttuneError {
  return new AttuneError('validation_error', `the ${format} file is cut short: ${message}`, [{ field, reason: 'truncated_audio', format, message, ...extra }]);
}
