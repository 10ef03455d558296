-- Read-aloud practice prompts (issue 23): a practice slot can go out as a read-aloud challenge (kind
-- 'reading': the sentence as text and as a voice note, the `speak` activity opened with it).
ALTER TABLE practice_prompts DROP CONSTRAINT practice_prompts_kind_check;
ALTER TABLE practice_prompts ADD CONSTRAINT practice_prompts_kind_check
    CHECK (kind IN ('practice', 'summary', 'review', 'reading'));

-- The scheduler looks for reading voice notes a dead pass never asked the voice agent for, every tick: only
-- those rows are indexed (a scan of the last hour's messages would grow with traffic).
CREATE INDEX messages_unspoken_readings ON messages (created_at)
    WHERE direction = 'out' AND kind = 'voice' AND status = 'queued' AND payload ? 'reading';

-- Likewise for weekly reports a dead pass recorded but never drew and published (agents/weekly.py undrawn).
CREATE INDEX messages_undrawn_reports ON messages (created_at)
    WHERE direction = 'out' AND kind = 'image' AND status = 'queued' AND payload = '{"report": true}';
