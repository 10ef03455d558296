"""What Charla keeps about learners: PostgreSQL rows (learners, messages, turns, profiles, memories)
and the Redis session context.
"""
