"""Habit and progress: daily goals and streaks, the weekly report and its chart."""
