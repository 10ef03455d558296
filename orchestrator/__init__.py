"""The webhook orchestrator: verify, parse, filter, deduplicate, publish, answer 200 fast."""
