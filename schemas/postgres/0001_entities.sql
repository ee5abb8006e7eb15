-- 0001_entities: the entities the API, the ingest gateways and the workers change (devices,
-- heart sessions, speech sessions, uploads, live audio stream claims).
--
-- Applied by store/postgres/migrate.ts, in one transaction with every other pending file,
-- under an advisory lock (two processes migrating at once: one applies, the other waits and
-- finds nothing to do). The same file runs on a PostgreSQL server (`pg`, DATABASE_URL) and on
-- PGlite (the embedded default), so it uses plain PostgreSQL 15 SQL and no extension.
-- Never edit this file once released: migrate refuses to start when an applied file's
-- checksum changes. Add 0002_*.sql instead.
--
-- Conventions:
--  * every invariant is a constraint here, not process memory: ids unique where they must be,
--    enumerations as CHECKs, ownership as (composite) foreign keys, one audio stream per
--    speech session as a partial unique index;
--  * times are timestamptz (UTC instants, millisecond precision in practice); durations,
--    rates and sizes carry their unit in the column name (_s, _hz, _bytes, _pct);
--  * "not known yet" is NULL (the API shows '' or null); free-form client data is a JSONB
--    object (CHECK jsonb_typeof = 'object');
--  * records that change carry `version` (1 on insert, +1 on every change): writers that read a
--    record and write it back pass the version they read, and a stale write changes nothing and
--    is reported as a conflict (optimistic concurrency). updated_at strictly increases with
--    every change too (at least 1 ms), so it orders the versions published to the bus.
--  * org_id and user_id are the identity provider's ids (token claims org_id and sub): text,
--    no table of their own yet.

CREATE TABLE devices
(
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    device_id text NOT NULL CHECK (device_id <> '' AND length(device_id) <= 128),
    user_id text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    model text NOT NULL DEFAULT '' CHECK (length(model) <= 200),
    firmware text NOT NULL DEFAULT '' CHECK (length(firmware) <= 100),
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= registered_at),
    last_seen_at timestamptz,
    battery_level_pct double precision CHECK (battery_level_pct BETWEEN 0 AND 100),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- Device ids are the organisation's: another organisation may register the same id.
    CONSTRAINT devices_pkey PRIMARY KEY (org_id, device_id)
);
CREATE INDEX devices_org_user_idx ON devices (org_id, user_id);
COMMENT ON TABLE devices IS 'Registered heart sensors. A device id is unique within its organisation (primary key (org_id, device_id)), not globally. Re-registering by the same user updates name/model/firmware; a different user of the same organisation is refused.';
COMMENT ON COLUMN devices.user_id IS 'User the device is registered to (token sub).';
COMMENT ON COLUMN devices.last_seen_at IS 'When a reading from the device was last accepted; NULL when never.';

CREATE TABLE sessions
(
    session_id uuid NOT NULL,
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    user_id text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    -- NULL: the session takes readings from any of its user's devices.
    device_id text,
    kind text NOT NULL DEFAULT 'coherence' CHECK (kind IN ('coherence', 'meditation', 'breathing', 'group', 'other')),
    title text NOT NULL DEFAULT '' CHECK (length(title) <= 500),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    coherence_threshold double precision NOT NULL DEFAULT 0.5 CHECK (coherence_threshold BETWEEN 0 AND 1),
    threshold_duration_s integer NOT NULL DEFAULT 30 CHECK (threshold_duration_s > 0),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at),
    CONSTRAINT sessions_pkey PRIMARY KEY (session_id),
    CONSTRAINT sessions_ended_when_ended_at CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    CONSTRAINT sessions_ends_after_start CHECK (ended_at IS NULL OR ended_at >= started_at),
    -- The device must be registered in the session's organisation.
    CONSTRAINT sessions_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, device_id)
);
-- Listing (newest first, keyset pagination on (started_at, session_id)) and "the user's
-- session active at t" (the ingest hot path, behind a cache).
CREATE INDEX sessions_org_user_started_idx ON sessions (org_id, user_id, started_at DESC, session_id DESC);
CREATE INDEX sessions_org_started_idx ON sessions (org_id, started_at DESC, session_id DESC);
-- Foreign-key look-ups from devices (and "sessions of this device").
CREATE INDEX sessions_device_idx ON sessions (org_id, device_id) WHERE device_id IS NOT NULL;
COMMENT ON TABLE sessions IS 'Heart (coherence) sessions and the configuration the coherence worker reads (coherence_threshold, threshold_duration_s). status active <=> ended_at IS NULL.';
COMMENT ON COLUMN sessions.coherence_threshold IS 'Coherence score 0..1 the user aims to hold; coherence_threshold_reached fires when it is held for threshold_duration_s.';
COMMENT ON COLUMN sessions.version IS 'Optimistic concurrency: 1 on insert, +1 on every change.';

CREATE TABLE speech_sessions
(
    session_id uuid NOT NULL,
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    user_id text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    title text NOT NULL DEFAULT '' CHECK (length(title) <= 500),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    kind text NOT NULL CHECK (kind IN ('presentation', 'interview', 'conversation', 'speech')),
    expected_duration_s integer CHECK (expected_duration_s >= 0),
    settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    status text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'recording', 'processing', 'completed', 'failed')),
    -- NULL while no audio has arrived.
    source text CHECK (source IN ('upload', 'live')),
    started_at timestamptz,
    ended_at timestamptz,
    audio_duration_s double precision CHECK (audio_duration_s >= 0),
    sample_rate_hz integer CHECK (sample_rate_hz > 0),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at),
    CONSTRAINT speech_sessions_pkey PRIMARY KEY (session_id),
    -- Target of the uploads' foreign key: an upload belongs to its session's org and user.
    CONSTRAINT speech_sessions_owner_key UNIQUE (session_id, org_id, user_id)
);
CREATE INDEX speech_sessions_org_user_created_idx ON speech_sessions (org_id, user_id, created_at DESC, session_id DESC);
CREATE INDEX speech_sessions_org_created_idx ON speech_sessions (org_id, created_at DESC, session_id DESC);
COMMENT ON TABLE speech_sessions IS 'Speech sessions and the settings the speech worker reads. Audio is taken by claiming a row of speech_audio_streams (one open stream per session).';
COMMENT ON COLUMN speech_sessions.started_at IS 'When the audio began (first sample of a live stream, or the upload start): the origin of every _ms column of the session''s results.';

CREATE TABLE speech_uploads
(
    upload_id uuid NOT NULL,
    session_id uuid NOT NULL,
    org_id text NOT NULL,
    user_id text NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    stage text NOT NULL DEFAULT 'receiving' CHECK (stage <> '' AND length(stage) <= 64),
    progress double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    eta_s double precision CHECK (eta_s >= 0),
    file_name text NOT NULL DEFAULT '' CHECK (length(file_name) <= 1000),
    size_bytes bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    -- NULL before the WAV header was read.
    encoding text CHECK (encoding IN ('pcm16', 'float32')),
    channel_count smallint NOT NULL DEFAULT 0 CHECK (channel_count >= 0),
    sample_rate_hz integer NOT NULL DEFAULT 0 CHECK (sample_rate_hz >= 0),
    audio_duration_s double precision CHECK (audio_duration_s >= 0),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    -- NULL unless the upload failed.
    error_code text,
    error_message text,
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at),
    completed_at timestamptz,
    CONSTRAINT speech_uploads_pkey PRIMARY KEY (upload_id),
    CONSTRAINT speech_uploads_session_fkey FOREIGN KEY (session_id, org_id, user_id)
        REFERENCES speech_sessions (session_id, org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX speech_uploads_session_idx ON speech_uploads (session_id, created_at);
COMMENT ON TABLE speech_uploads IS 'Uploaded audio files and the progress of their processing jobs.';
COMMENT ON COLUMN speech_uploads.stage IS 'Processing step in progress or last reached: receiving, decoding, voice_activity, features, transcription, alignment, scoring, storing, done.';

CREATE TABLE speech_audio_streams
(
    stream_id text NOT NULL CHECK (stream_id <> '' AND length(stream_id) <= 128),
    session_id uuid NOT NULL,
    source text NOT NULL CHECK (source IN ('upload', 'live')),
    -- Which process holds the stream (host/pid), for operators looking at a stuck session.
    holder text NOT NULL DEFAULT '' CHECK (length(holder) <= 200),
    claimed_at timestamptz NOT NULL,
    released_at timestamptz,
    outcome text CHECK (outcome IN ('ended', 'failed', 'aborted', 'superseded')),
    CONSTRAINT speech_audio_streams_pkey PRIMARY KEY (stream_id),
    CONSTRAINT speech_audio_streams_session_fkey FOREIGN KEY (session_id) REFERENCES speech_sessions (session_id) ON DELETE CASCADE,
    CONSTRAINT speech_audio_streams_released_with_outcome CHECK ((released_at IS NULL) = (outcome IS NULL)),
    CONSTRAINT speech_audio_streams_release_after_claim CHECK (released_at IS NULL OR released_at >= claimed_at)
);
-- The invariant: at most one open (unreleased) audio stream per speech session, whichever
-- process claims it. A second claim fails with unique_violation (the repositories: conflict).
CREATE UNIQUE INDEX speech_audio_streams_one_open_per_session ON speech_audio_streams (session_id) WHERE released_at IS NULL;
CREATE INDEX speech_audio_streams_session_idx ON speech_audio_streams (session_id, claimed_at);
COMMENT ON TABLE speech_audio_streams IS 'Audio streams of speech sessions (live sockets and uploads), one row per claim. At most one open (released_at IS NULL) per session: the partial unique index speech_audio_streams_one_open_per_session.';
