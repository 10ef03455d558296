-- Delivery statuses arrive in any order, and a "failed" can trail the "read" of the same message (a stale
-- report): a failure reported for a message the phone already has changes nothing. A status moves a
-- message only forward in rank (sent < delivered < read < played; failed final) and in evidence of
-- delivery (sent < failed < delivered < read < played); the evidence order also picks the status to apply
-- among those recorded before the send was.
CREATE FUNCTION charla_status_evidence(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'failed' THEN 2 WHEN 'delivered' THEN 3
                       WHEN 'read' THEN 4 WHEN 'played' THEN 5 ELSE -1 END
$$;

CREATE FUNCTION charla_status_advances(current text, incoming text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT charla_status_rank(current) < charla_status_rank(incoming)
       AND charla_status_evidence(current) < charla_status_evidence(incoming)
$$;
