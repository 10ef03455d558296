"""Tests of the agent processes (agents/)."""
