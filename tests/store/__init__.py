"""Tests of the stores (charla/store)."""
