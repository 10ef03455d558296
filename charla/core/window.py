"""The WhatsApp 24-hour customer-service window: the one place that says whether a learner may get free-form text.

After a learner's last message, the business may answer free-form for 24 hours; after that only an approved
template may open a conversation (Meta error 131047, Twilio 63016). Charla treats the window as closed
`MARGIN` early: a decision taken now is acted on later (the outbox queue, sender retries with back-off, a
split reply's later parts, clock skew between our `last_inbound_at` and the provider's own timestamp), and a
free-form message that reaches the provider after the window closed is refused (then the sender falls back to
the template, one round trip later). Ten minutes covers outbox lag and a few retries with room to spare, while
giving up under 1% of the window. The sender, the scheduler and broadcasts all decide through this module,
in Python (`is_open`) or in SQL (`open_sql`), so they cannot disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import sql

LENGTH = timedelta(hours=24)
MARGIN = timedelta(minutes=10)
USABLE = LENGTH - MARGIN  # free-form only while the learner's last message is younger than this


def closes_at(last_inbound_at: datetime | None) -> datetime | None:
    """When free-form sending stops for a learner who last wrote at `last_inbound_at` (None: never wrote)."""
    return None if last_inbound_at is None else last_inbound_at + USABLE


def remaining(last_inbound_at: datetime | None, now: datetime) -> timedelta:
    """How long free-form sending stays allowed (zero once closed)."""
    closes = closes_at(last_inbound_at)
    return max(closes - now, timedelta(0)) if closes is not None else timedelta(0)


def is_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether free-form text may be sent at `now` to a learner who last wrote at `last_inbound_at`."""
    closes = closes_at(last_inbound_at)
    return closes is not None and closes > now


def open_sql(last_inbound_at: sql.Composable, now: sql.Composable) -> sql.Composed:
    """The SQL boolean `is_open` computes (false for a NULL `last_inbound_at`), for the given expressions,
    e.g. `open_sql(sql.SQL("l.last_inbound_at"), sql.Placeholder("now"))`."""
    return sql.SQL("coalesce({last} + {usable} > {now}, false)").format(
        last=last_inbound_at, usable=sql.Literal(USABLE), now=now)
