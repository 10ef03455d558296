"""What the tests and the benchmarks share: fake provider servers (Graph API, Twilio, Stripe, LLMs), webhook
payloads, the in-process and subprocess stacks, voice and recall material, and small helpers. bench/ imports
the tests only through this package; fixtures stay in tests/conftest.py."""
