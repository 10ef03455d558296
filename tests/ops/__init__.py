"""Tests of operator tools (charla/ops)."""
