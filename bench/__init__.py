"""Charla benchmarks: bus throughput, webhook → outbox → Graph latency and webhook ingest (against a bare
endpoint and pywa), each against a baseline in the same run.

`python -m bench` starts its own embedded PostgreSQL and Redis, runs every benchmark, prints one JSON
document to stdout (progress goes to stderr) and writes it to bench/results/latest.json.
"""
