-- Foundation: learners and their identities, the message log, profiles, payments, schedules, memories.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE learners (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    wa_id           text UNIQUE,          -- WhatsApp phone-number id (Meta `wa_id` / `from`)
    wa_user_id      text UNIQUE,          -- WhatsApp business-scoped user id (`user_id` / `from_user_id`)
    twilio_id       text UNIQUE,          -- Twilio address, e.g. 'whatsapp:+14155238886'
    console_id      text UNIQUE,          -- local console handle
    display_name    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_inbound_at timestamptz,
    CONSTRAINT learner_has_identity CHECK (num_nonnulls(wa_id, wa_user_id, twilio_id, console_id) > 0)
);

-- One row per learner; the document's shape is validated by the memory agent, its size here.
CREATE TABLE profiles (
    learner_id uuid PRIMARY KEY REFERENCES learners (id) ON DELETE CASCADE,
    data       jsonb NOT NULL DEFAULT '{}'::jsonb,
    version    integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profile_is_object CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT profile_is_bounded CHECK (pg_column_size(data) <= 262144)
);

-- Every inbound and outbound message. Inbound rows are unique per provider message id (retried
-- webhooks collapse onto one row); outbound rows are unique per outbound id (idempotent sends) and per
-- (reply_to, reply_part), so one inbound message gets at most one reply of each part.
CREATE TABLE messages (
    id                  bigserial PRIMARY KEY,
    learner_id          uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    direction           text NOT NULL CHECK (direction IN ('in', 'out')),
    provider            text NOT NULL CHECK (provider IN ('meta', 'twilio', 'console')),
    provider_message_id text,
    outbound_id         uuid UNIQUE,
    reply_to            bigint REFERENCES messages (id) ON DELETE CASCADE,
    reply_part          text,
    kind                text NOT NULL,
    body                text,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status              text NOT NULL,   -- in: received | answered; out: queued | sent | delivered | read | failed
    error               jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbound_has_id CHECK (direction = 'in' OR outbound_id IS NOT NULL),
    CONSTRAINT inbound_has_provider_id CHECK (direction = 'out' OR provider_message_id IS NOT NULL),
    UNIQUE (provider, provider_message_id),
    UNIQUE (reply_to, reply_part)
);
CREATE INDEX messages_learner_time ON messages (learner_id, created_at DESC);

CREATE TABLE payments (
    id               bigserial PRIMARY KEY,
    learner_id       uuid REFERENCES learners (id) ON DELETE CASCADE,
    stripe_event_id  text UNIQUE,
    stripe_object_id text,
    kind             text NOT NULL,
    status           text NOT NULL,
    amount_cents     bigint,
    currency         text,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_learner ON payments (learner_id, created_at DESC);

-- Practice schedules in the learner's own timezone; next_run_at is the next due instant (UTC).
CREATE TABLE schedules (
    id          bigserial PRIMARY KEY,
    learner_id  uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    rule        text NOT NULL,
    timezone    text NOT NULL,
    next_run_at timestamptz,
    paused      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE NOT paused;

-- Conversation memory: summaries and key moments, 384-dim multilingual-e5-small embeddings.
-- No HNSW index on purpose: a per-learner filtered HNSW top-k silently returns fewer than k rows;
-- an exact scan over one learner's rows (capped at 1,000) is fast and always complete.
CREATE TABLE memories (
    id                 bigserial PRIMARY KEY,
    learner_id         uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    kind               text NOT NULL,
    content            text NOT NULL,
    embedding          vector(384) NOT NULL,
    source_message_ids bigint[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX memories_learner ON memories (learner_id, created_at DESC);
