"""The runtime every process shares: settings, event models, the Redis Streams bus and its workers,
PostgreSQL, logs, metrics, alerts and liveness. Imports nothing else of Charla.
"""
