"""Error types shared by every agent: transient failures are retried, permanent ones are not."""


class CharlaError(Exception):
    """Base of Charla's own errors."""


class TransientError(CharlaError):
    """Worth retrying later (timeouts, 5xx, rate limits); `retry_after` seconds when the provider said."""

    retry_after: float | None = None


class PermanentError(CharlaError):
    """Retrying cannot help (invalid input, rejected by the provider): dead-letter or record at once."""


class AuthError(TransientError):
    """A provider rejected Charla's credentials (`code`: the provider's error code): an operator must act, and
    the work waits (retried after `retry_after`) meanwhile."""

    code: int | None = None
