"""Tests of charla.journey: placement, the learner's settings."""
