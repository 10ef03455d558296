"""Charla benchmarks: bus throughput and webhook → outbox → Graph latency, each against a baseline.

`python -m bench` starts its own embedded PostgreSQL and Redis, runs every benchmark, prints one JSON
document to stdout (progress goes to stderr) and writes it to bench/results/latest.json.
"""
