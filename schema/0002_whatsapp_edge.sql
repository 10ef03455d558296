-- WhatsApp edge: every provider id of an outbound message (a long reply goes out in parts), the raw
-- delivery statuses (recorded even when they arrive before the send is recorded), unreachable learners.

CREATE TABLE outbound_parts (
    provider            text NOT NULL,
    provider_message_id text NOT NULL,
    outbound_id         uuid NOT NULL REFERENCES messages (outbound_id) ON DELETE CASCADE,
    part                integer NOT NULL,
    sent_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_message_id),
    UNIQUE (outbound_id, part)
);

CREATE TABLE message_statuses (
    provider            text NOT NULL,
    provider_message_id text NOT NULL,
    status              text NOT NULL,
    outbound_id         uuid,
    occurred_at         timestamptz,
    errors              jsonb NOT NULL DEFAULT '[]'::jsonb,
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_message_id, status)
);

-- Statuses only move forward (sent < delivered < read < played); failed is final.
CREATE FUNCTION charla_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3
                       WHEN 'played' THEN 4 WHEN 'failed' THEN 9 ELSE -1 END
$$;

ALTER TABLE learners ADD COLUMN unreachable_at timestamptz;
ALTER TABLE learners ADD COLUMN unreachable_reason text;
