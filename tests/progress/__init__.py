"""Tests of charla.progress: goals, streaks, the weekly report and its chart."""
