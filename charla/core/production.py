"""What production refuses: unset or placeholder secrets, weak dashboard tokens, malformed operator lists,
contradictory model settings. Checked once, when the settings are read (Settings validates with `refuse`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import AliasChoices, SecretStr

if TYPE_CHECKING:
    from charla.core.settings import Provider, Settings

# The development secrets are published here, so they sign nothing but the local console's own deliveries:
# they apply only with WHATSAPP_PROVIDER=console outside production (Settings.dev_secrets), and only when
# WHATSAPP_APP_SECRET / STRIPE_WEBHOOK_SECRET are unset.
DEV_APP_SECRET = "charla-development-app-secret"  # noqa: S105 - a documented development-only value
DEV_STRIPE_SECRET = "whsec_charla_console_development"  # noqa: S105 - a documented development-only value
# What production needs for each WhatsApp provider, besides what every deployment needs.
_PROVIDER_NEEDS: dict[Provider, tuple[str, ...]] = {
    "meta": ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"),
    "twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "CHARLA_PUBLIC_URL"),
    "console": (),
}

MIN_SECRET_BYTES = 32  # CHARLA_SECRET_KEY: shorter keys could be guessed, and with them the erased numbers
_OPERATOR = re.compile(r"[A-Za-z0-9_.@-]{1,32}")
_PLACEHOLDERS = {"changeme", "change-me", "secret", "xxx", "todo", "placeholder", DEV_APP_SECRET,
                 DEV_STRIPE_SECRET}
# Secrets that production refuses as placeholders whenever they are set, whatever the provider (a route
# verified with a published value would be open to anyone).
_SET_MUST_BE_REAL = ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "TWILIO_AUTH_TOKEN", "STRIPE_WEBHOOK_SECRET",
                     "CHARLA_METRICS_TOKEN")


def operators(settings: Settings) -> dict[str, str]:
    """Dashboard operators by name, with their tokens: CHARLA_ADMIN_TOKENS, plus CHARLA_ADMIN_TOKEN as
    `admin`. Raises ValueError on a malformed list (the settings validator reports it at start)."""
    found: dict[str, str] = {}
    listed = settings.admin_tokens.get_secret_value() if settings.admin_tokens else ""
    pairs = [item.strip().partition(":") for item in listed.split(",") if item.strip()]
    if settings.admin_token is not None and settings.admin_token.get_secret_value().strip():  # `NAME=` is unset
        pairs.append(("admin", ":", settings.admin_token.get_secret_value()))
    for number, (name, colon, token) in enumerate(pairs, 1):
        name, token = name.strip(), token.strip()
        if not colon or not _OPERATOR.fullmatch(name) or not token:  # the message must not echo a token
            raise ValueError(f"CHARLA_ADMIN_TOKENS: entry {number} is not `name:token` (names: letters, "
                             "digits, . _ @ -, at most 32)")
        if name in found or token in found.values():
            raise ValueError(f"CHARLA_ADMIN_TOKENS: operator {name!r} or its token appears twice")
        found[name] = token
    return found


def missing_for_production(settings: Settings) -> list[str]:
    """Names that production needs and lacks (unset, empty, or an obvious placeholder)."""
    required = ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PAYMENT_LINK",
                *_PROVIDER_NEEDS[settings.whatsapp_provider]]
    missing = [name for name in required if not _usable(_by_env_name(settings, name))]
    missing += [name for name in _SET_MUST_BE_REAL
                if name not in required and _by_env_name(settings, name) is not None
                and not _usable(_by_env_name(settings, name))]
    if not (_usable(settings.admin_token) or _usable(settings.admin_tokens)):
        missing.insert(0, "CHARLA_ADMIN_TOKEN or CHARLA_ADMIN_TOKENS")
    if not (settings.groq_api_key or settings.anthropic_api_key or settings.openai_base_url):
        missing.append("GROQ_API_KEY or ANTHROPIC_API_KEY or OPENAI_BASE_URL")
    return missing


def _by_env_name(settings: Settings, env_name: str) -> object:
    for name, field in type(settings).model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and env_name in alias.choices:
            return getattr(settings, name)
    raise KeyError(env_name)


def refuse(settings: Settings) -> None:
    """Raise ValueError, naming what to set, for settings that must not run."""
    if settings.env == "production":
        if settings.whatsapp_provider == "console":
            raise ValueError("CHARLA_ENV=production cannot use WHATSAPP_PROVIDER=console; "
                             "set WHATSAPP_PROVIDER=meta or twilio and its credentials")
        missing = missing_for_production(settings)
        if not _usable(settings.secret_key):
            missing.append("CHARLA_SECRET_KEY")
        if settings.local_model == "on":
            missing.append("CHARLA_LOCAL_MODEL=auto or off (the demo model cannot tutor)")
        if missing:
            raise ValueError("CHARLA_ENV=production refuses to start; set these (no placeholders): "
                             + ", ".join(missing))
        weak = [name for name, token in operators(settings).items() if not strong_token(token)]
        if weak:
            raise ValueError(f"CHARLA_ENV=production refuses weak dashboard token(s) for {', '.join(weak)}: "
                             "use at least 32 random bytes, e.g. the output of "
                             "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    operators(settings)  # a malformed CHARLA_ADMIN_TOKENS fails at start, in every environment
    key = _secret(settings.secret_key)
    if key and (not _usable(key) or len(key.encode()) < MIN_SECRET_BYTES):
        raise ValueError(f"CHARLA_SECRET_KEY must be at least {MIN_SECRET_BYTES} random bytes, not a placeholder "
                         "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    if settings.openai_base_url and not settings.openai_model:
        raise ValueError("OPENAI_BASE_URL is set but OPENAI_MODEL is not: name the model the server should run")
    if set(settings.tts_engines) - {"piper", "kokoro", "coqui", "espeak"}:
        raise ValueError(f"unknown engine(s) in CHARLA_TTS_ENGINES: {settings.tts_engines_setting!r}; "
                         "use piper, kokoro, coqui, espeak")
    unknown = set(settings.llm_chain + settings.llm_hard_chain) - {"groq", "anthropic", "openai", "local"}
    if unknown:
        raise ValueError(f"unknown provider(s) in CHARLA_LLM_CHAIN/CHARLA_LLM_HARD_CHAIN: {sorted(unknown)}; "
                         "use groq, anthropic, openai, local")


def strong_token(token: str) -> bool:
    """At least 32 random bytes as text: 43 url-safe base64 characters (64 hex digits pass too), not a
    repeated pattern."""
    return len(token) >= 43 and len(set(token)) >= 12


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def _usable(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and value.strip().lower() not in _PLACEHOLDERS and value.strip() != ""


