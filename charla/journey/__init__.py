"""The learning journey: placement, roleplay missions, the learner's own settings (guided activities plug in
through charla.tutor.activity)."""
