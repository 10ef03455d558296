"""Tests of the shared runtime (charla/core)."""
