"""Tests of the webhook edge, console and dashboard (orchestrator/)."""
