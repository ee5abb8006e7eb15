-- Uploads in MP3, Ogg Opus and WebM Opus (issue 13): speech_uploads.encoding names the file's
-- audio coding, so it takes mp3 and opus beside the WAV encodings. (Numbered 0006: 0005 is the
-- API keys and webhooks migration of the same issue round.)
ALTER TABLE speech_uploads DROP CONSTRAINT IF EXISTS speech_uploads_encoding_check;
ALTER TABLE speech_uploads ADD CONSTRAINT speech_uploads_encoding_check CHECK (encoding IN ('pcm16', 'float32', 'mp3', 'opus'));
