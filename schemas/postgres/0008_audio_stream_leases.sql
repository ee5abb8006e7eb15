-- Audio stream leases. A claim (speech_audio_streams) was held until its process released it,
-- so an ingest process that died with a live socket or an upload open left the session
-- `recording`/`processing` for good, refused every new stream, and left the stream without a
-- last frame on the bus: the speech worker held it open and never committed past its first
-- frame. Now a claim is a lease: its process renews lease_until while the stream is open
-- (ingest/audio/stream-leases.ts, every third of ATTUNE_AUDIO_LEASE_S), and any ingest process
-- takes an open claim whose lease has passed (FOR UPDATE SKIP LOCKED: one of them), publishes
-- the stream's end marker to the audio topic and releases the claim with outcome 'lost'.
--
-- Claims open when this migration runs get ten minutes, so a process of the previous version
-- still streaming is not cut at once, and a claim a dead process left is freed soon.
ALTER TABLE speech_audio_streams ADD COLUMN lease_until timestamptz;
UPDATE speech_audio_streams SET lease_until = now() + interval '10 minutes' WHERE released_at IS NULL;
ALTER TABLE speech_audio_streams DROP CONSTRAINT IF EXISTS speech_audio_streams_outcome_check;
ALTER TABLE speech_audio_streams ADD CONSTRAINT speech_audio_streams_outcome_check CHECK (outcome IN ('ended', 'failed', 'aborted', 'superseded', 'lost'));
CREATE INDEX speech_audio_streams_open_lease_idx ON speech_audio_streams (lease_until) WHERE released_at IS NULL;
COMMENT ON COLUMN speech_audio_streams.lease_until IS 'Until when the holder has the open stream; past it, any ingest process ends the stream (outcome lost). NULL: released, or claimed before leases (never expires).';
