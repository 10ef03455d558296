-- The tutor: one row per answered turn (provider, tokens, cost, corrections), and turns waiting for a
-- provider to come back.

-- Inbound messages that need no reply (reactions) are 'noted'; unanswered ones stay 'received'.
UPDATE messages SET status = 'noted' WHERE direction = 'in' AND status = 'received' AND kind = 'reaction';

CREATE TABLE turns (
    id            bigserial PRIMARY KEY,
    learner_id    uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    reply_to      bigint NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,  -- newest inbound answered
    inbound_ids   bigint[] NOT NULL,           -- every inbound message this turn answered, in order
    provider      text NOT NULL,               -- groq | anthropic | openai | local | command | canned
    model         text NOT NULL DEFAULT '',
    route         text NOT NULL DEFAULT '',    -- default | hard_grammar | low_confidence | command
    input_tokens  integer NOT NULL DEFAULT 0,  -- every model call of the turn (repairs, summaries) included
    output_tokens integer NOT NULL DEFAULT 0,
    cost_usd      numeric(12, 6) NOT NULL DEFAULT 0,
    llm_ms        integer NOT NULL DEFAULT 0,
    total_ms      integer NOT NULL DEFAULT 0,  -- from the webhook's receipt to the reply being queued
    corrections   jsonb NOT NULL DEFAULT '[]'::jsonb,
    vocabulary    jsonb NOT NULL DEFAULT '[]'::jsonb,
    voice_example boolean NOT NULL DEFAULT false,
    demo          boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX turns_learner ON turns (learner_id, created_at DESC);
CREATE INDEX turns_time ON turns (created_at);

-- A learner whose turn no provider could answer: retried with backoff until it is answered.
CREATE TABLE pending_turns (
    learner_id      uuid PRIMARY KEY REFERENCES learners (id) ON DELETE CASCADE,
    event           jsonb NOT NULL,             -- the inbound event to re-publish
    attempts        integer NOT NULL DEFAULT 1,
    next_attempt_at timestamptz NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_turns_due ON pending_turns (next_attempt_at);
