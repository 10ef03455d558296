"""Error types shared by every agent: transient failures are retried, permanent ones are not."""


class CharlaError(Exception):
    """Base of Charla's own errors."""


class TransientError(CharlaError):
    """Worth retrying later (timeouts, 5xx, rate limits); `retry_after` seconds when the provider said."""

    retry_after: float | None = None


class PermanentError(CharlaError):
    """Retrying cannot help (invalid input, rejected by the provider): dead-letter or record at once."""
