"""Names every process agrees on. Each key carries the reason it is shaped the way it is."""

from typing import Final

# One prefix for every Redis key, so a shared Redis can be inspected (and flushed in tests) per app.
PREFIX: Final = "charla"

# Streams: one per topic. Inbound learner messages, consumed by the conversation agent's group.
STREAM_INBOUND: Final = f"{PREFIX}:stream:inbound"
# Replies waiting to go out; the sender is the only consumer group, so every reply is sent from one place.
STREAM_OUTBOX: Final = f"{PREFIX}:stream:outbox"
# Delivery statuses and provider errors: a stream of their own so they never wait behind message work.
STREAM_STATUSES: Final = f"{PREFIX}:stream:statuses"
# One event per answered tutoring turn (what was said, corrections, provider, tokens), for the memory
# agent, analytics and the console; off the reply path.
STREAM_TURNS: Final = f"{PREFIX}:stream:turns"
# Stripe events, verified by the orchestrator; consumed by the payment agent's group.
STREAM_PAYMENTS: Final = f"{PREFIX}:stream:payments"
# Voice work, off the text path: learners' voice notes to transcribe and replies to speak. The voice agent
# turns a note into a transcript and publishes it on the inbound stream, so text never queues behind audio.
STREAM_VOICE: Final = f"{PREFIX}:stream:voice"
# Which consumer groups read each stream. Every process declares them at startup, and a publish to a
# missing stream creates them first: a group created later starts at the stream's end and would skip
# what came before it.
CONSUMER_GROUPS: Final = {STREAM_INBOUND: ("conversation",), STREAM_OUTBOX: ("sender",),
                          STREAM_STATUSES: ("sender",), STREAM_TURNS: ("memory",),
                          STREAM_PAYMENTS: ("payments",), STREAM_VOICE: ("voice",)}
# Operator alerts (hash: code -> JSON with the message and when it was last seen), shown by `charla status`.
ALERTS_KEY: Final = f"{PREFIX}:alerts"
# Hash "<template>:<language>" -> JSON {status, at}: the latest status WhatsApp reported for each template.
TEMPLATES_KEY: Final = f"{PREFIX}:templates"
# Poison events go to `<stream>:dead`, next to their source, so `charla status` can pair them up.
DEAD_SUFFIX: Final = ":dead"

# Per-learner publish sequence (a hash per stream: learner -> last seq). Incremented in the same script
# as XADD so sequences have no gaps: that is what lets a consumer wait for "my predecessor" safely.
SEQ_KEY: Final = f"{PREFIX}:seq:{{stream}}"
# Last completed sequence per learner for one consumer group (a hash: learner -> seq).
DONE_KEY: Final = f"{PREFIX}:done:{{stream}}:{{group}}"  # the group name must stay last
# Pub/sub channel announcing that a learner's done-sequence advanced (ephemeral: waiters also poll).
DONE_CHANNEL: Final = f"{PREFIX}:done-events:{{stream}}:{{group}}"
# Per-learner processing lock for one group, so a re-delivered entry never runs beside its original.
LOCK_KEY: Final = f"{PREFIX}:lock:{{stream}}:{{group}}:{{learner}}"
# Publish-side deduplication (e.g. a WhatsApp message id); set in the same script as XADD.
DEDUPE_KEY: Final = f"{PREFIX}:dedupe:{{key}}"

# Set on each partition of the previous layout while the partition count changes (docs/scaling.md): the
# publish script refuses new events there ("SEALED"), so they go to the new layout and the old one drains.
SEAL_KEY: Final = f"{PREFIX}:sealed:{{stream}}"
# Which consumer of a group owns a partition (a string: consumer name, expiring unless renewed), and the
# group's live consumers (sorted set: name -> expiry in ms), from which each computes its fair share.
LEASE_KEY: Final = f"{PREFIX}:lease:{{stream}}:{{group}}"
MEMBERS_KEY: Final = f"{PREFIX}:members:{{topic}}:{{group}}"

# Heartbeats: one key per live consumer process, expiring on its own when the process dies.
HEARTBEAT_KEY: Final = f"{PREFIX}:hb:{{agent}}:{{consumer}}"
# Each process's Prometheus metrics (JSON of its families), written with its heartbeat and expiring with it,
# so the orchestrator's /metrics can serve processes on other machines that share only Redis.
METRICS_KEY: Final = f"{PREFIX}:metrics:{{agent}}:{{consumer}}"
# Index of those keys (sorted set: key -> expiry in ms): a scrape reads it instead of SCANning a keyspace
# that holds a dedupe key per message.
METRICS_INDEX_KEY: Final = f"{PREFIX}:metrics-index"
# Supervisor control channel: `charla restart NAME` publishes here; PUBLISH's receiver count tells
# the CLI whether a stack is listening at all.
CONTROL_CHANNEL: Final = f"{PREFIX}:control"
# Processes the supervisor runs (hash: name -> JSON), shown by `charla status`.
PROCS_KEY: Final = f"{PREFIX}:procs"

# A learner's session (one JSON document: last messages, topic, summary, this session's errors), expiring
# 24 h after their last turn; read and written once per turn, never touching PostgreSQL.
SESSION_KEY: Final = f"{PREFIX}:session:{{learner}}"
# State of each LLM provider's circuit breaker (hash: provider -> JSON), shown by `charla status`.
LLM_CIRCUITS_KEY: Final = f"{PREFIX}:llm:circuits"
# The LLM chain an agent process runs with (hash: provider -> JSON with model and demo flag).
LLM_PROVIDERS_KEY: Final = f"{PREFIX}:llm:providers"
# A learner's cached entitlement (JSON: status, announced), deleted by the payment agent on any change.
ENTITLEMENT_KEY: Final = f"{PREFIX}:entitlement:{{learner}}"
# Announces that a learner's entitlement changed (payload: learner id), for processes that cache it.
ENTITLEMENT_CHANNEL: Final = f"{PREFIX}:entitlement-changed"
# Learners blocked by an operator (a set of learner keys), checked before any work is spent.
BLOCKED_KEY: Final = f"{PREFIX}:blocked"
# Learners a human operator has taken over (hash: learner id -> JSON with the operator and since when): the
# AI stays quiet for them. A hash, so the conversation agent's check is one HGET per turn.
TAKEOVER_KEY: Final = f"{PREFIX}:takeover"
# Announces each inbound message of a held learner (JSON: learner_id, text, at, …) for a live dashboard;
# pub/sub because the message itself is in PostgreSQL: a dashboard that was not listening reloads from there.
TAKEOVER_CHANNEL: Final = f"{PREFIX}:takeover-inbound"
# Audio Charla serves or uploads (bytes, expiring): spoken replies (`out:<token>`, fetched by Twilio and the
# console at /media/<token>.ogg, uploaded to Meta by the sender) and console voice notes (`in:<id>`).
MEDIA_KEY: Final = f"{PREFIX}:media:{{token}}"
# The tokens of a learner's data exports still kept (a set): erasure deletes the files before they expire.
EXPORTS_KEY: Final = PREFIX + ":exports:{learner_id}"
MEDIA_TTL_S: Final = 24 * 3600
# The local console's clock offset in seconds (a string float), so an operator can move time forward to see
# scheduled practice; read by the scheduler only with WHATSAPP_PROVIDER=console. Changes are announced on
# the channel of the same name, which wakes the scheduler at once.
CONSOLE_CLOCK_KEY: Final = f"{PREFIX}:console:clock"
# The SID (HX…) of the Twilio Content API resource for one set of buttons or list rows, keyed by a hash of
# everything that makes the content (`types`, language): created once and shared by every sender, restarts
# included. Each use extends it; an unused set lapses (its content stays at Twilio, re-created if needed).
TWILIO_CONTENT_KEY: Final = f"{PREFIX}:twilio:content:{{digest}}"
TWILIO_CONTENT_TTL_S: Final = 90 * 24 * 3600
