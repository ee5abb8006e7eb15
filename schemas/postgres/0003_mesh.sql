-- 0003_mesh: group ("mesh") sessions, their invitations and their participants (issue 11).
--
-- Same conventions as 0001_entities.sql. The invariant that matters across processes is the
-- capacity: a join locks its session's row (SELECT ... FOR UPDATE), counts the participants
-- present, and inserts, all in one transaction (store/postgres/mesh-repo.ts), so two API
-- processes admitting the last seat at once admit one. The unique indexes keep the rest:
-- one participant row per user and session (joining twice is the same participant), one
-- position per session (positions are handed out in join order and never reused).
--
-- Status is stored and also follows the clock: a scheduled session whose scheduled_start has
-- passed is active, and a session past scheduled_start + duration_s is ended, whether or not
-- anything wrote that yet. Readers compute the effective status from the columns
-- (mesh-repo.ts: effectiveStatus); writers that lock the row (join, leave, end) store it.

CREATE TABLE mesh_sessions
(
    mesh_id uuid NOT NULL,
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    host_user_id text NOT NULL CHECK (host_user_id <> '' AND length(host_user_id) <= 128),
    host_display_name text NOT NULL DEFAULT '' CHECK (length(host_display_name) <= 200),
    name text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    -- scheduled: created with a start in the future; instant: started when created.
    kind text NOT NULL CHECK (kind IN ('scheduled', 'instant')),
    visibility text NOT NULL CHECK (visibility IN ('public', 'private')),
    max_participants integer NOT NULL CHECK (max_participants BETWEEN 1 AND 100000),
    scheduled_start timestamptz NOT NULL,
    -- NULL: no planned end (the host ends it).
    duration_s integer CHECK (duration_s BETWEEN 60 AND 86400),
    protocol text NOT NULL CHECK (protocol IN ('heart_breath_sync', 'gratitude_focus', 'coherence_building', 'intention_amplify', 'manifestation_basic', 'manifestation_advanced')),
    breathing_rate_bpm double precision NOT NULL CHECK (breathing_rate_bpm BETWEEN 2 AND 30),
    coherence_threshold double precision NOT NULL CHECK (coherence_threshold BETWEEN 0 AND 1),
    threshold_duration_s integer NOT NULL CHECK (threshold_duration_s BETWEEN 5 AND 3600),
    -- Join requirements; NULL: none.
    min_tier text CHECK (min_tier IN ('free', 'plus', 'pro', 'enterprise')),
    min_coherence_history double precision CHECK (min_coherence_history BETWEEN 0 AND 1),
    status text NOT NULL CHECK (status IN ('scheduled', 'active', 'ended')),
    started_at timestamptz,
    ended_at timestamptz,
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL CHECK (updated_at >= created_at),
    CONSTRAINT mesh_sessions_pkey PRIMARY KEY (mesh_id),
    CONSTRAINT mesh_sessions_started_when_not_scheduled CHECK ((status = 'scheduled') = (started_at IS NULL)),
    CONSTRAINT mesh_sessions_ended_when_ended_at CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    CONSTRAINT mesh_sessions_ends_after_start CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX mesh_sessions_org_start_idx ON mesh_sessions (org_id, scheduled_start DESC, mesh_id DESC);
CREATE INDEX mesh_sessions_org_host_idx ON mesh_sessions (org_id, host_user_id);
COMMENT ON TABLE mesh_sessions IS 'Group (mesh) sessions: many participants in one session, each with their own live readings; the group worker computes group coherence and synchrony for them. status is stored and also follows the clock (a scheduled session is active from scheduled_start, ended from scheduled_start + duration_s).';
COMMENT ON COLUMN mesh_sessions.visibility IS 'public: anyone in the organisation may see and join; private: only the host, invited users and the organisation''s admins.';
COMMENT ON COLUMN mesh_sessions.max_participants IS 'Participants present at once (left_at IS NULL) at most; a join beyond it is refused (409 conflict, reason mesh_full).';
COMMENT ON COLUMN mesh_sessions.breathing_rate_bpm IS 'The pacer''s breathing rate, breaths per minute (sync_pulse phase and progress).';
COMMENT ON COLUMN mesh_sessions.coherence_threshold IS 'Group coherence 0..1 that, held for threshold_duration_s seconds, is a manifestation_event.';
COMMENT ON COLUMN mesh_sessions.min_coherence_history IS 'Average coherence score 0..1 over the joiner''s last 30 days of valid windows required to join; NULL: none.';

CREATE TABLE mesh_invitations
(
    invitation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mesh_id uuid NOT NULL REFERENCES mesh_sessions (mesh_id) ON DELETE CASCADE,
    -- Exactly one of user_id and email: an invitation by user id (the token's sub) or by address.
    user_id text CHECK (user_id <> '' AND length(user_id) <= 128),
    email text CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 320),
    invited_at timestamptz NOT NULL,
    CONSTRAINT mesh_invitations_one_invitee CHECK ((user_id IS NULL) <> (email IS NULL))
);
CREATE UNIQUE INDEX mesh_invitations_user_key ON mesh_invitations (mesh_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX mesh_invitations_email_key ON mesh_invitations (mesh_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX mesh_invitations_user_idx ON mesh_invitations (user_id) WHERE user_id IS NOT NULL;
COMMENT ON TABLE mesh_invitations IS 'Who may join a private mesh session besides its host: by user id (invited_user_ids) or by e-mail address (invitation_emails; matched only once tokens carry an email claim).';

CREATE TABLE mesh_participants
(
    participant_id uuid NOT NULL,
    mesh_id uuid NOT NULL REFERENCES mesh_sessions (mesh_id) ON DELETE CASCADE,
    org_id text NOT NULL,
    user_id text NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    -- NULL: the participant's readings from any of their devices count.
    device_id text,
    -- 1, 2, 3, ... in join order within the session; never reused.
    position integer NOT NULL CHECK (position >= 1),
    intention text NOT NULL DEFAULT '' CHECK (length(intention) <= 500),
    anonymous boolean NOT NULL DEFAULT false,
    joined_at timestamptz NOT NULL,
    -- NULL while present; a participant who leaves and joins again gets the same row back.
    left_at timestamptz,
    CONSTRAINT mesh_participants_pkey PRIMARY KEY (participant_id),
    CONSTRAINT mesh_participants_one_per_user UNIQUE (mesh_id, user_id),
    CONSTRAINT mesh_participants_one_per_position UNIQUE (mesh_id, position),
    CONSTRAINT mesh_participants_left_after_join CHECK (left_at IS NULL OR left_at >= joined_at),
    CONSTRAINT mesh_participants_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, device_id)
);
CREATE INDEX mesh_participants_present_idx ON mesh_participants (mesh_id) WHERE left_at IS NULL;
CREATE INDEX mesh_participants_user_idx ON mesh_participants (org_id, user_id);
COMMENT ON TABLE mesh_participants IS 'Participants of mesh sessions, one row per user and session; left_at IS NULL while present (those count towards max_participants).';
COMMENT ON COLUMN mesh_participants.anonymous IS 'When true, live events and lists leave out display_name.';
