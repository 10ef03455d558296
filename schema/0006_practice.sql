-- Spaced-repetition practice: each learner's practice times, every prompt slot (sent exactly once), and
-- one FSRS card per practised item (an error category or a word).
ALTER TABLE schedules ADD COLUMN local_time text NOT NULL DEFAULT '19:00';  -- HH:MM in `timezone`
ALTER TABLE schedules ADD COLUMN days smallint[] NOT NULL DEFAULT '{0,1,2,3,4,5,6}';  -- 0 = Monday
CREATE UNIQUE INDEX schedules_one_rule ON schedules (learner_id, rule);

CREATE TABLE practice_prompts (
    id          bigserial PRIMARY KEY,
    learner_id  uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    schedule_id bigint REFERENCES schedules (id) ON DELETE SET NULL,
    kind        text NOT NULL CHECK (kind IN ('practice', 'summary')),
    slot_at     timestamptz NOT NULL,          -- the due instant this prompt is for: unique per learner and kind
    status      text NOT NULL CHECK (status IN ('due', 'queued', 'skipped')),
    via         text,                          -- text | template
    item        text,                          -- error:<category> | word:<word>
    body        text,
    reason      text,                          -- why it was skipped
    outbound_id uuid,
    answered_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (learner_id, kind, slot_at)
);
CREATE INDEX practice_prompts_due ON practice_prompts (created_at) WHERE status = 'due';
CREATE INDEX practice_prompts_open ON practice_prompts (learner_id, created_at DESC) WHERE answered_at IS NULL;

CREATE TABLE practice_cards (
    learner_id uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    item       text NOT NULL,
    card       jsonb NOT NULL,                 -- an fsrs.Card as a dict
    due        timestamptz NOT NULL,
    PRIMARY KEY (learner_id, item)
);
