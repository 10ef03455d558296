-- A send interrupted by a crash (the sender killed after Meta accepted a message, before recording it) is
-- confirmed from the delivery statuses instead of sent again: the sender notes which part it is sending before
-- each send, and Meta's statuses carry the outbound id (biz_opaque_callback_data).
ALTER TABLE messages ADD COLUMN sending_part integer, ADD COLUMN sending_since timestamptz;

CREATE INDEX message_statuses_outbound_id ON message_statuses (outbound_id) WHERE outbound_id IS NOT NULL;
