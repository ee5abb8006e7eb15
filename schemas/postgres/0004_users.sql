-- 0004_users: users, the coherence platform document's device and session forms (issue 12A).
--
-- Same conventions as 0001_entities.sql.
--  * users: one row per identity-provider subject and organisation, created the first time
--    the subject calls /v1/users/me, starts a session or registers a device
--    (store/postgres/users-repo.ts: ensure, INSERT ... ON CONFLICT DO NOTHING). Profile and
--    preferences only: every figure of GET /v1/users/me (stats, baseline) is computed from
--    ClickHouse and the sessions table when asked, never stored here.
--  * devices gain the document's registration form: a type (e.g. solas) and a serial number,
--    unique per organisation (a partial unique index: devices registered by id alone have
--    none); last_seen_at and battery_level_pct (0001) are now kept by every accepted sync, and
--    last_worn_at as the device reports it.
--  * sessions: kind also takes the document's `solo`; the document's practice fields
--    (protocol, target duration, intention; notes and rating at the end) live in
--    session_practice, one row per session created with them.

CREATE TABLE users
(
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    user_id text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 100),
    -- From the token's email claim when it has one; NULL when never seen.
    email text CHECK (length(email) <= 320),
    notifications_enabled boolean NOT NULL DEFAULT true,
    -- Local time of day HH:MM in the user's time zone; NULL: no reminder.
    reminder_time text CHECK (reminder_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    -- IANA zone name (validated by the API with Intl); streaks count days in it.
    timezone text NOT NULL DEFAULT 'UTC' CHECK (timezone <> '' AND length(timezone) <= 64),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at),
    CONSTRAINT users_pkey PRIMARY KEY (org_id, user_id)
);
COMMENT ON TABLE users IS 'Users (identity-provider subjects) of an organisation: profile and preferences. Created on first sight of the subject; statistics are computed when read, not stored.';
COMMENT ON COLUMN users.timezone IS 'IANA time zone name; current_streak and longest_streak count calendar days in it.';

ALTER TABLE devices ADD COLUMN device_type text CHECK (device_type ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
ALTER TABLE devices ADD COLUMN serial_number text CHECK (serial_number <> '' AND length(serial_number) <= 128);
ALTER TABLE devices ADD COLUMN last_worn_at timestamptz;
CREATE UNIQUE INDEX devices_org_serial_key ON devices (org_id, serial_number) WHERE serial_number IS NOT NULL;
COMMENT ON COLUMN devices.device_type IS 'Kind of sensor as registered (coherence platform document: type, e.g. solas); NULL for devices registered by id without one.';
COMMENT ON COLUMN devices.serial_number IS 'Manufacturer serial number, unique within the organisation (devices_org_serial_key); NULL when not given.';
COMMENT ON COLUMN devices.last_worn_at IS 'When the device says it was last worn (sync body last_worn); NULL when never reported.';

ALTER TABLE sessions DROP CONSTRAINT sessions_kind_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_kind_check CHECK (kind IN ('coherence', 'meditation', 'breathing', 'group', 'other', 'solo'));

CREATE TABLE session_practice
(
    session_id uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    protocol text CHECK (protocol IN ('heart_breath_sync', 'gratitude_focus', 'coherence_building', 'intention_amplify', 'manifestation_basic', 'manifestation_advanced')),
    target_duration_s integer CHECK (target_duration_s BETWEEN 60 AND 86400),
    intention text NOT NULL DEFAULT '' CHECK (length(intention) <= 500),
    -- Given when the session is ended (POST /v1/sessions/{id}/end); NULL until then.
    notes text CHECK (length(notes) <= 2000),
    subjective_rating smallint CHECK (subjective_rating BETWEEN 1 AND 5),
    CONSTRAINT session_practice_pkey PRIMARY KEY (session_id)
);
COMMENT ON TABLE session_practice IS 'The coherence platform document''s fields of a session: protocol, target duration and intention given at the start, notes and a subjective rating 1-5 given at the end.';
