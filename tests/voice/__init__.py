"""Tests of the voice agent (voice/)."""
