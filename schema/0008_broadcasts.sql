-- Operator broadcasts: a notice (or a practice template) to a segment of learners, paced by the scheduler.
-- Recipients are fixed when the broadcast is created; each gets one deterministic outbound id, so a send
-- is recorded in `messages` (and its delivery statuses counted) like any other outbound message.
CREATE TABLE broadcasts (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    segment    jsonb NOT NULL DEFAULT '{}'::jsonb,   -- {"language", "level", "paid"}: null means any
    text       text NOT NULL,
    template   jsonb,                                -- a charla.events.Template for learners outside the window
    status     text NOT NULL DEFAULT 'sending' CHECK (status IN ('sending', 'done', 'cancelled')),
    rate       real NOT NULL                         -- messages per second it is paced at (CHARLA_BROADCAST_RATE)
);
CREATE INDEX broadcasts_recent ON broadcasts (created_at DESC);

CREATE TABLE broadcast_recipients (
    broadcast_id bigint NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    learner_id   uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    outbound_id  uuid NOT NULL UNIQUE,               -- messages.outbound_id once queued
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'queued', 'skipped')),
    reason       text,                               -- why it was skipped
    queued_at    timestamptz,
    PRIMARY KEY (broadcast_id, learner_id)
);
CREATE INDEX broadcast_recipients_pending ON broadcast_recipients (broadcast_id) WHERE state = 'pending';

-- Business-initiated sends (templates) in the last 24 hours, counted against WhatsApp's messaging tier
-- before each broadcast batch: kept small by the predicate.
CREATE INDEX messages_business_initiated ON messages (created_at)
    WHERE direction = 'out' AND (kind = 'template' OR payload ? 'sent_as_template');
