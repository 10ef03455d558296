-- WhatsApp lifecycle (issue 25): identities a learner arrived with before a number change (late deliveries
-- to them still find the learner), what happened to each learner's identity and preferences (shown to the
-- operator in the learner's record), and the opt-out from proactive messages (practice, broadcasts).
CREATE TABLE learner_aliases (
    kind       text NOT NULL CHECK (kind IN ('wa_id', 'wa_user_id')),  -- the learners column it once was
    value      text NOT NULL,
    learner_id uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX learner_aliases_learner ON learner_aliases (learner_id);

-- number_changed | identity_changed | user_id_changed | opted_out | opted_in; `detail` holds the ids and source.
CREATE TABLE learner_events (
    id         bigserial PRIMARY KEY,
    learner_id uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX learner_events_learner ON learner_events (learner_id, id DESC);

ALTER TABLE learners ADD COLUMN opted_out_at timestamptz;  -- set: no practice, summaries or broadcasts
