"""Tests of the command line (charla/cli)."""
