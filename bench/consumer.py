"""A bus consumer process for the throughput benchmark (tests.support.bus_consumer, run as a module).

Usage: python -m bench.consumer REDIS_URL TOPIC GROUP CONSUMER CONCURRENCY [--partitions N] [--cluster]
On exit it prints the worker's stats as one JSON line on stdout.
"""

from __future__ import annotations

import sys

from tests.support.bus_consumer import main, noop

__all__ = ["noop"]

if __name__ == "__main__":
    main(sys.argv[1:])
