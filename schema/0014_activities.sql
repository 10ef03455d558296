-- Guided activities (placement, roleplay missions, read-aloud and listening drills): the one a learner is in,
-- with its state, so it survives restarts and the 24-hour window. At most one per learner; finished ones are
-- deleted (their results live in the profile).
CREATE TABLE activities (
    learner_id uuid PRIMARY KEY REFERENCES learners (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    state      jsonb NOT NULL DEFAULT '{}'::jsonb,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
