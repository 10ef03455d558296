"""Tests of payments (payments/)."""
