"""The deterministic learner-error checker: rules over NLP data shipped in packages, per target language,
precision first (a wrong correction is worse than none). `check(text, lang)` is the one entry point."""
