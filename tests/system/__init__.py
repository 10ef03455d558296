"""Tests of the whole system: end to end, faults, deployment, docs and layout."""
