-- Learner memory: memories cite the provider message ids they came from (wamid.…, console ids), and a
-- learner's memories are read newest first when pruning to the cap.
ALTER TABLE memories DROP COLUMN source_message_ids;
ALTER TABLE memories ADD COLUMN source_refs text[] NOT NULL DEFAULT '{}';
DROP INDEX memories_learner;
CREATE INDEX memories_learner ON memories (learner_id, created_at DESC, id DESC);
