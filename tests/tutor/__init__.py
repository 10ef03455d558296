"""Tests of tutoring (charla/tutor)."""
