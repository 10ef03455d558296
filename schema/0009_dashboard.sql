-- The dashboard's time-range queries (messages per day, active learners, voice share) read messages by time
-- across learners; without this they scan the whole message log.
CREATE INDEX IF NOT EXISTS messages_time ON messages (created_at);
