-- Free messages used survive "delete my data" as a one-way hash of each identity, so erasing and coming
-- back is not a way around the free quota. Nothing else about the person is kept.
CREATE TABLE erased_quota (
    identity_hash text PRIMARY KEY,   -- sha256 of the identity (column and value): not reversible
    free_used     integer NOT NULL,
    erased_at     timestamptz NOT NULL DEFAULT now()
);
