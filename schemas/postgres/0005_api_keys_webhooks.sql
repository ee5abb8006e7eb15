-- 0005_api_keys_webhooks: API keys for server-to-server use, and webhooks with their
-- delivery outbox (issue 12).
--
-- Same conventions as 0001_entities.sql. Every timestamp is written by Attune from its clock
-- (a parameter, never now()), so the webhook dispatcher's back-off can be driven by a test clock.
--  * api_keys: one row per key. The secret is 32 random bytes shown once at creation; only
--    its sha-256 is stored (secret_sha256). A fast hash is enough for a 256-bit random secret
--    (nobody can guess one, with or without a KDF's work factor: a KDF protects low-entropy
--    passwords), and it keeps a lookup per request cheap. key_id is public (the client id).
--    A key acts as the admin who created it (created_by), with its own scopes.
--  * webhooks: an organisation's endpoints. The secret signs each delivery (HMAC-SHA256), so it
--    is kept as given (a signature needs it), and never returned after creation.
--  * webhook_events: events taken from the bus (one row per event id, so a replayed record is
--    the same event). data is NULL while the event waits for what it reports (a completed
--    session's last windows): it is filled, and the event fanned out, once ready_at passes.
--  * webhook_deliveries: the outbox, one row per (webhook, event): the exact body signed, its
--    attempts and the next one's time. Rows are taken FOR UPDATE SKIP LOCKED, so several
--    dispatchers share them; a dispatcher that dies mid-attempt leaves the row pending, with
--    next_attempt_at as a lease, and it is tried again. Nothing is lost on restart.
--  * webhook_device_battery: whether a device was last seen below the low-battery level, so
--    device.low_battery fires once per fall below it, also across restarts.

CREATE TABLE api_keys
(
    key_id text PRIMARY KEY CHECK (key_id ~ '^ak_[0-9a-f]{16}$'),
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    created_by text NOT NULL CHECK (created_by <> '' AND length(created_by) <= 128),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    scopes text[] NOT NULL,
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at DESC);

CREATE TABLE webhooks
(
    webhook_id uuid PRIMARY KEY,
    org_id text NOT NULL CHECK (org_id <> '' AND length(org_id) <= 128),
    created_by text NOT NULL,
    url text NOT NULL CHECK (length(url) <= 2048),
    events text[] NOT NULL,
    secret text NOT NULL CHECK (length(secret) BETWEEN 1 AND 256),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    created_at timestamptz NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at DESC);

CREATE TABLE webhook_events
(
    event_id text PRIMARY KEY,
    org_id text NOT NULL,
    type text NOT NULL,
    created timestamptz NOT NULL,
    -- What the event is about (ids), for events whose data is computed when ready.
    subject jsonb NOT NULL DEFAULT '{}',
    data jsonb,
    ready_at timestamptz NOT NULL,
    fanned_out boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_events_ready ON webhook_events (ready_at) WHERE NOT fanned_out;

CREATE TABLE webhook_deliveries
(
    delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    event_id text NOT NULL REFERENCES webhook_events (event_id),
    event_type text NOT NULL,
    body text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    delivered_at timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, delivery_id DESC);

CREATE TABLE webhook_device_battery
(
    org_id text NOT NULL,
    device_id text NOT NULL,
    low boolean NOT NULL,
    PRIMARY KEY (org_id, device_id)
);
