-- Review that fits chat and the wordbook (issue 22): a practice pause that ends by itself, reviews chained
-- after a tapped grade (kind 'review', graded by buttons), and each learner's own saved words.
ALTER TABLE schedules ADD COLUMN paused_until timestamptz;  -- no prompt before this instant (a timed pause)

ALTER TABLE practice_prompts DROP CONSTRAINT practice_prompts_kind_check;
ALTER TABLE practice_prompts ADD CONSTRAINT practice_prompts_kind_check
    CHECK (kind IN ('practice', 'summary', 'review'));
CREATE INDEX practice_prompts_answered ON practice_prompts (learner_id, answered_at) WHERE answered_at IS NOT NULL;

CREATE TABLE wordbook (
    learner_id  uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    word        text NOT NULL,                 -- lower case, as the profile's vocabulary keys it
    translation text NOT NULL DEFAULT '',
    example     text NOT NULL DEFAULT '',
    source      text NOT NULL CHECK (source IN ('command', 'choice', 'reaction')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (learner_id, word)
);
CREATE INDEX practice_prompts_due_slot ON practice_prompts (slot_at) WHERE status = 'due';  -- the dispatch's batches
