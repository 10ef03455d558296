"""The `charla` command line: its verbs, the supervisor of a local stack, the embedded PostgreSQL and Redis.
"""
