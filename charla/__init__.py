"""Charla's shared core: settings, event models, the Redis Streams bus, stores, services and the CLI."""

__version__ = "0.1.0"
