"""Agent processes: each consumes one stream as one consumer group (see agents.registry)."""
