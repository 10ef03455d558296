"""The one settings object. Read from the environment and `.env`; names are part of Charla's contract."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from charla.core import production
from charla.core.production import DEV_APP_SECRET, DEV_STRIPE_SECRET

Provider = Literal["meta", "twilio", "console"]
def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Everything configurable, in one place. See the README's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = Field("development", validation_alias=_env("CHARLA_ENV"))
    home: Path = Field(Path(".charla"), validation_alias=_env("CHARLA_HOME"))
    models_dir_setting: Path | None = Field(None, validation_alias=_env("CHARLA_MODELS_DIR"))
    host: str = Field("127.0.0.1", validation_alias=_env("CHARLA_HOST"))
    port: int = Field(8000, validation_alias=_env("CHARLA_PORT"))
    log_level: str = Field("INFO", validation_alias=_env("CHARLA_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("CHARLA_LOG_FORMAT"))
    admin_token: SecretStr | None = Field(None, validation_alias=_env("CHARLA_ADMIN_TOKEN"))
    # Security: dashboard (issue 18)
    admin_tokens: SecretStr | None = Field(None, validation_alias=_env("CHARLA_ADMIN_TOKENS"), description=(
        "Named dashboard operators, `alice:TOKEN,bob:TOKEN`; each token signs in as its operator (the audit log "
        "records the name). CHARLA_ADMIN_TOKEN, when set, is one more operator named `admin`."))
    allowed_hosts_setting: str = Field("", validation_alias=_env("CHARLA_ALLOWED_HOSTS"), description=(
        "Comma-separated extra host names the dashboard and console answer to (besides localhost, 127.0.0.1, "
        "[::1] and the host of CHARLA_PUBLIC_URL), e.g. a LAN address; any other Host header is refused."))
    login_attempts: int = Field(5, ge=1, validation_alias=_env("CHARLA_LOGIN_ATTEMPTS"), description=(
        "Wrong dashboard logins allowed per client address per CHARLA_LOGIN_WINDOW_S before it gets 429."))
    login_global_attempts: int = Field(50, ge=1, validation_alias=_env("CHARLA_LOGIN_GLOBAL_ATTEMPTS"), description=(
        "Wrong dashboard logins allowed from all addresses together per window before every login gets 429 "
        "(Bearer tokens keep working)."))
    login_window_s: int = Field(900, ge=1, validation_alias=_env("CHARLA_LOGIN_WINDOW_S"), description=(
        "Length of the wrong-login counting window, and of the lockout once it is full (seconds)."))
    admin_session_s: int = Field(12 * 3600, ge=60, validation_alias=_env("CHARLA_ADMIN_SESSION_S"), description=(
        "Lifetime of a dashboard session from login (fixed, not sliding); logout revokes it earlier."))

    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    embedded_pg_port: int = Field(54329, validation_alias=_env("CHARLA_PG_PORT"))
    embedded_redis_port: int = Field(56379, validation_alias=_env("CHARLA_REDIS_PORT"))
    redis_server: str | None = Field(None, validation_alias=_env("CHARLA_REDIS_SERVER"))
    # Security: services and media fetches (issue 18)
    twilio_media_hosts_setting: str = Field(
        "api.twilio.com,*.twilio.com,*.twiliocdn.com", validation_alias=_env("CHARLA_TWILIO_MEDIA_HOSTS"),
        description="Comma-separated hosts Twilio media (MediaUrl and its redirects) may be fetched from; "
                    "`*.example.com` matches subdomains. The host of TWILIO_API_BASE_URL is always allowed. "
                    "The account's credentials go only to TWILIO_API_BASE_URL's origin, never with a redirect.")

    whatsapp_provider_setting: Provider | None = Field(None, validation_alias=_env("WHATSAPP_PROVIDER"))
    whatsapp_app_secret: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_APP_SECRET"))
    whatsapp_verify_token: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_VERIFY_TOKEN"))
    whatsapp_access_token: SecretStr | None = Field(None, validation_alias=_env("WHATSAPP_ACCESS_TOKEN"))
    whatsapp_phone_number_id: str | None = Field(None, validation_alias=_env("WHATSAPP_PHONE_NUMBER_ID"))
    whatsapp_api_base_url: str = Field("https://graph.facebook.com/v23.0",
                                       validation_alias=_env("WHATSAPP_API_BASE_URL"))

    reengage_template: str | None = Field(None, validation_alias=_env("WHATSAPP_REENGAGE_TEMPLATE"))
    template_language: str = Field("en", validation_alias=_env("WHATSAPP_TEMPLATE_LANGUAGE"))

    practice_template: str | None = Field(None, validation_alias=_env("CHARLA_PRACTICE_TEMPLATE"))
    practice_template_language: str | None = Field(None, validation_alias=_env("CHARLA_PRACTICE_TEMPLATE_LANGUAGE"))
    scheduler_tick_s: float = Field(1.0, gt=0, validation_alias=_env("CHARLA_SCHEDULER_TICK_S"))
    broadcast_rate: float = Field(20.0, gt=0, validation_alias=_env("CHARLA_BROADCAST_RATE"))
    broadcast_daily_limit: int = Field(1000, ge=0, validation_alias=_env("CHARLA_BROADCAST_DAILY_LIMIT"))

    twilio_account_sid: str | None = Field(None, validation_alias=_env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: SecretStr | None = Field(None, validation_alias=_env("TWILIO_AUTH_TOKEN"))
    twilio_whatsapp_from: str | None = Field(None, validation_alias=_env("TWILIO_WHATSAPP_FROM"))
    twilio_api_base_url: str = Field("https://api.twilio.com", validation_alias=_env("TWILIO_API_BASE_URL"))
    twilio_content_base_url: str = Field("https://content.twilio.com",
                                         validation_alias=_env("TWILIO_CONTENT_BASE_URL"))
    public_url: str | None = Field(None, validation_alias=_env("CHARLA_PUBLIC_URL"))

    stripe_secret_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_SECRET_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(None, validation_alias=_env("STRIPE_WEBHOOK_SECRET"))
    stripe_payment_link: str | None = Field(None, validation_alias=_env("STRIPE_PAYMENT_LINK"))
    stripe_api_base_url: str = Field("https://api.stripe.com", validation_alias=_env("STRIPE_API_BASE_URL"))

    groq_api_key: SecretStr | None = Field(None, validation_alias=_env("GROQ_API_KEY"))
    groq_base_url: str | None = Field(None, validation_alias=_env("GROQ_BASE_URL"))
    groq_model: str = Field("llama-3.3-70b-versatile", validation_alias=_env("GROQ_MODEL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    anthropic_model: str = Field("claude-sonnet-4-6", validation_alias=_env("ANTHROPIC_MODEL"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_model: str | None = Field(None, validation_alias=_env("OPENAI_MODEL"))

    llm_chain_setting: str = Field("groq,anthropic,openai,local", validation_alias=_env("CHARLA_LLM_CHAIN"))
    llm_hard_chain_setting: str = Field("anthropic,groq,openai,local", validation_alias=_env("CHARLA_LLM_HARD_CHAIN"))
    llm_timeout_s: float = Field(30.0, gt=0, validation_alias=_env("CHARLA_LLM_TIMEOUT_S"))
    patience_s: float = Field(15.0, gt=0, validation_alias=_env("CHARLA_PATIENCE_S"))
    llm_max_retries: int = Field(2, ge=0, validation_alias=_env("CHARLA_LLM_MAX_RETRIES"))
    llm_max_tokens: int = Field(600, ge=32, validation_alias=_env("CHARLA_LLM_MAX_TOKENS"))
    llm_breaker_threshold: int = Field(5, ge=1, validation_alias=_env("CHARLA_LLM_BREAKER_THRESHOLD"))
    llm_breaker_cooldown_s: float = Field(30.0, gt=0, validation_alias=_env("CHARLA_LLM_BREAKER_COOLDOWN_S"))
    llm_confidence_min: float = Field(0.6, ge=0, le=1, validation_alias=_env("CHARLA_LLM_CONFIDENCE_MIN"))
    llm_prices: dict[str, tuple[float, float]] = Field(default_factory=dict, validation_alias=_env("CHARLA_LLM_PRICES"))
    prompt_budget_tokens: int = Field(3000, ge=300, validation_alias=_env("CHARLA_PROMPT_BUDGET_TOKENS"))
    local_model: Literal["auto", "on", "off"] = Field("auto", validation_alias=_env("CHARLA_LOCAL_MODEL"))
    local_model_path: Path | None = Field(None, validation_alias=_env("CHARLA_LOCAL_MODEL_PATH"))
    local_model_threads: int = Field(2, ge=1, validation_alias=_env("CHARLA_LOCAL_MODEL_THREADS"))
    # Output guard and offline mode (issue 20, K3)
    local_model_repeat_penalty: float = Field(
        1.3, ge=1.0, le=2.0, validation_alias=_env("CHARLA_LOCAL_MODEL_REPEAT_PENALTY"),
        description="Repetition penalty of the offline demo model (1.0: none; a 135M model loops without one).")
    offline_model_s: float = Field(
        0.5, ge=0, le=10, validation_alias=_env("CHARLA_OFFLINE_MODEL_S"),
        description="Offline mode: seconds the demo model may spend on its one sentence (0: no demo sentence, "
                    "the reply is the checker's corrections and a question from the content bank).")
    guard_max_reply_chars: int = Field(
        800, ge=100, validation_alias=_env("CHARLA_GUARD_MAX_REPLY_CHARS"),
        description="Output guard: a model reply longer than this (the tutor asks for 1-3 short sentences and a "
                    "question) is retried once, then replaced by the checker's corrections and a question.")
    default_target_language: str = Field("es", validation_alias=_env("CHARLA_DEFAULT_TARGET_LANGUAGE"))
    default_native_language: str = Field("en", validation_alias=_env("CHARLA_DEFAULT_NATIVE_LANGUAGE"))
    session_ttl_s: int = Field(24 * 3600, ge=60, validation_alias=_env("CHARLA_SESSION_TTL_S"))
    session_messages: int = Field(20, ge=2, validation_alias=_env("CHARLA_SESSION_MESSAGES"))
    memory_every: int = Field(10, ge=1, validation_alias=_env("CHARLA_MEMORY_EVERY"))
    recall_k: int = Field(3, ge=0, le=20, validation_alias=_env("CHARLA_RECALL_K"))
    turn_retry_s: float = Field(15.0, gt=0, validation_alias=_env("CHARLA_TURN_RETRY_S"))

    voice_max_seconds: float = Field(300.0, gt=0, validation_alias=_env("CHARLA_VOICE_MAX_SECONDS"))
    voice_min_confidence: float = Field(0.45, ge=0, le=1, validation_alias=_env("CHARLA_VOICE_MIN_CONFIDENCE"))
    voice_low_confidence: Literal["ask", "correct"] = Field("ask", validation_alias=_env("CHARLA_VOICE_LOW_CONFIDENCE"))
    voice_workers: int = Field(1, ge=1, validation_alias=_env("CHARLA_VOICE_WORKERS"))
    voice_threads: int = Field(2, ge=1, validation_alias=_env("CHARLA_VOICE_THREADS"))
    voice_nice: int = Field(10, ge=0, le=19, validation_alias=_env("CHARLA_VOICE_NICE"))
    voice_idle: bool = Field(True, validation_alias=_env("CHARLA_VOICE_IDLE"))
    voice_beam_size: int = Field(1, ge=1, le=10, validation_alias=_env("CHARLA_VOICE_BEAM_SIZE"))
    voice_noise_reduction: bool = Field(False, validation_alias=_env("CHARLA_VOICE_NOISE_REDUCTION"))
    voice_replies: bool = Field(True, validation_alias=_env("CHARLA_VOICE_REPLIES"))
    whisper_model: Path | None = Field(None, validation_alias=_env("CHARLA_WHISPER_MODEL"))
    whisper_english_model: str = Field("bundled", validation_alias=_env("CHARLA_WHISPER_ENGLISH_MODEL"))
    tts_engines_setting: str = Field("piper,kokoro,coqui,espeak", validation_alias=_env("CHARLA_TTS_ENGINES"))
    piper_voices: dict[str, Path] = Field(default_factory=dict, validation_alias=_env("CHARLA_PIPER_VOICES"))
    coqui_model: str | None = Field(None, validation_alias=_env("CHARLA_COQUI_MODEL"))
    coqui_languages_setting: str = Field("", validation_alias=_env("CHARLA_COQUI_LANGUAGES"))

    free_messages: int = Field(50, ge=0, validation_alias=_env("FREE_MESSAGES"))
    paid_daily_messages: int = Field(500, ge=0, validation_alias=_env("PAID_DAILY_MESSAGES"))
    # Security: erasure (issue 18)
    secret_key: SecretStr | None = Field(
        None, validation_alias=_env("CHARLA_SECRET_KEY"),
        description="Server secret (at least 32 bytes) keying the HMAC that remembers an erased learner's used "
                    "free messages; required in production. Unset outside production: one is generated once "
                    "into CHARLA_HOME/secret_key (mode 0600) and reused. Changing it forgets those counts.")

    meta_text_limit: int = Field(4096, ge=16, le=4096, validation_alias=_env("CHARLA_META_TEXT_LIMIT"))
    twilio_text_limit: int = Field(1600, ge=16, le=1600, validation_alias=_env("CHARLA_TWILIO_TEXT_LIMIT"))
    max_media_bytes: int = Field(16 * 1024 * 1024, gt=0, validation_alias=_env("CHARLA_MAX_MEDIA_BYTES"))
    # Export (issue 18)
    export_ttl_s: int = Field(3600, gt=0, le=24 * 3600, validation_alias=_env("CHARLA_EXPORT_TTL_S"),
                              description="Seconds a learner's data export (the JSON file sent for \"send me my "
                                          "data\") stays fetchable at its random /media/<token>.json address "
                                          "(Twilio and the console fetch it from there) before it is deleted.")
    max_body_bytes: int = Field(3 * 1024 * 1024, gt=0, validation_alias=_env("CHARLA_MAX_BODY_BYTES"))
    body_timeout_s: float = Field(10.0, gt=0, validation_alias=_env("CHARLA_BODY_TIMEOUT_S"))
    # Security: body limits and public surfaces (issue 18)
    max_form_bytes: int = Field(
        64 * 1024, gt=0, validation_alias=_env("CHARLA_MAX_FORM_BYTES"),
        description="Largest request body, in bytes, on every route but the webhooks (CHARLA_MAX_BODY_BYTES) and "
                    "the console's voice upload (CHARLA_MAX_MEDIA_BYTES): dashboard forms, console calls. "
                    "Larger bodies get 413 before they are read.")
    metrics_token: SecretStr | None = Field(
        None, validation_alias=_env("CHARLA_METRICS_TOKEN"),
        description="When set, GET /metrics needs `Authorization: Bearer <token>` (401 otherwise); "
                    "unset, /metrics is open to anyone who can reach the port.")
    dedupe_ttl_s: int = Field(7 * 24 * 3600, gt=0, validation_alias=_env("CHARLA_DEDUPE_TTL_S"))
    bus_max_deliveries: int = Field(5, ge=1, validation_alias=_env("CHARLA_BUS_MAX_DELIVERIES"))
    bus_lease_ms: int = Field(15_000, ge=100, validation_alias=_env("CHARLA_BUS_LEASE_MS"))
    send_confirm_s: float = Field(
        10.0, ge=0, le=60, validation_alias=_env("CHARLA_SEND_CONFIRM_S"),
        description="After a crash interrupted a WhatsApp send, how long the sender waits for Meta's status of "
                    "it (which names the reply) before sending it again; 0 sends again at once.")
    bus_retention_s: int = Field(3600, ge=0, validation_alias=_env("CHARLA_BUS_RETENTION_S"))
    bus_max_backlog: int = Field(200_000, ge=1, validation_alias=_env("CHARLA_BUS_MAX_BACKLOG"))
    redis_max_connections: int = Field(64, ge=4, validation_alias=_env("CHARLA_REDIS_MAX_CONNECTIONS"))
    agent_concurrency: int = Field(8, ge=1, validation_alias=_env("CHARLA_AGENT_CONCURRENCY"))
    heartbeat_s: float = Field(2.0, gt=0, validation_alias=_env("CHARLA_HEARTBEAT_S"))
    # Review that fits chat and the wordbook (issue 22: practice, review, wordbook)
    review_daily_cap: int = Field(20, ge=1, le=500, validation_alias=_env("CHARLA_REVIEW_DAILY_CAP"), description=(
        "Most FSRS reviews offered per learner and local day (the next due card follows a tapped grade until then)."))
    review_easy: bool = Field(False, validation_alias=_env("CHARLA_REVIEW_EASY"), description=(
        "Four grades (Again / Hard / Good / Easy, shown by WhatsApp as a list) instead of three reply buttons."))

    # Learning journey: placement and the learner's settings (issue 21)
    placement_offer: bool = Field(True, validation_alias=_env("CHARLA_PLACEMENT_OFFER"), description=(
        "Offer the placement test once, with a new learner's first reply (off: only `test my level` starts it)."))
    # Speaking coach: the Spanish voice (issue 23)
    kokoro_languages: str = Field("es", validation_alias=_env("CHARLA_KOKORO_LANGUAGES"), description="Languages "
                                  "(comma-separated) the `kokoro` engine speaks: Kokoro-82M from espeak-ng's phonemes, "
                                  "voice jf_gongitsune (Whisper WER on Spanish 0.04, espeak-ng 0.31).")
    # --- issue 24: partitioned streams on Redis Cluster (docs/scaling.md) ---
    redis_cluster: bool = Field(False, validation_alias=_env("CHARLA_REDIS_CLUSTER"), description=(
        "Talk to a Redis Cluster: REDIS_URL names any one node (redis://host:port), the client finds the others "
        "and follows failovers. Partition streams are then hash-tagged even with one partition."))
    bus_partitions: int = Field(1, ge=1, le=1024, validation_alias=_env("CHARLA_BUS_PARTITIONS"), description=(
        "Partition streams per bus topic, a learner's events always in the same one. 1 keeps the unpartitioned "
        "key names. Change it only by the procedure in docs/scaling.md."))
    bus_previous_partitions: int | None = Field(
        None, ge=1, le=1024, validation_alias=_env("CHARLA_BUS_PREVIOUS_PARTITIONS"), description=(
            "Set to the old CHARLA_BUS_PARTITIONS while the partition count changes (docs/scaling.md): the old "
            "partitions are drained and still recognise duplicates; unset it once `charla bus drain` "
            "reports them drained and the dedupe window has passed."))

    # Scale-out: deploy, PgBouncer (issue 24)
    db_transaction_pooler: bool = Field(False, validation_alias=_env("CHARLA_DB_TRANSACTION_POOLER"), description=(
        "DATABASE_URL is a transaction pooler (PgBouncer pool_mode=transaction): no server-side prepared statements "
        "(each lives in one server session, and the pooler hands every transaction to any session)."))

    # Read-aloud practice prompts (issue 23: speaking coach, docs/practice.md)
    practice_reading_every: int = Field(3, ge=0, le=100, validation_alias=_env("CHARLA_PRACTICE_READING_EVERY"),
                                        description=(
        "Every Nth practice prompt a learner gets is a read-aloud challenge (text and voice note) when voice notes "
        "are on for them and they sent one in the last 30 days, inside the 24-hour window. 0: never."))

    @cached_property
    def whatsapp_provider(self) -> Provider:
        """The explicit WHATSAPP_PROVIDER, else inferred from which credentials are present."""
        if self.whatsapp_provider_setting:
            return self.whatsapp_provider_setting
        if self.whatsapp_access_token:
            return "meta"
        if self.twilio_auth_token:
            return "twilio"
        return "console"

    @property
    def llm_chain(self) -> tuple[str, ...]:
        """Providers in fallback order for ordinary turns (unconfigured ones are skipped)."""
        return _names(self.llm_chain_setting)

    @property
    def llm_hard_chain(self) -> tuple[str, ...]:
        """Providers in fallback order for hard grammar questions and low-confidence second opinions."""
        return _names(self.llm_hard_chain_setting)

    @property
    def models_dir(self) -> Path:
        """Where prepared models live (the assembled multilingual Whisper): CHARLA_MODELS_DIR, else
        CHARLA_HOME/models. The container image bakes them outside its CHARLA_HOME volume."""
        return self.models_dir_setting or self.home / "models"

    @property
    def twilio_media_hosts(self) -> tuple[str, ...]:
        """Host patterns Twilio media may come from: CHARLA_TWILIO_MEDIA_HOSTS and TWILIO_API_BASE_URL's host."""
        api_host = urlsplit(self.twilio_api_base_url).hostname
        return (*_names(self.twilio_media_hosts_setting.lower()), *([api_host] if api_host else []))

    @property
    def tts_engines(self) -> tuple[str, ...]:
        return _names(self.tts_engines_setting)

    @property
    def coqui_languages(self) -> tuple[str, ...]:
        return _names(self.coqui_languages_setting)

    def local_model_enabled(self, other_providers: bool) -> bool:
        """The offline demo model: by default only when no provider is configured."""
        return self.local_model == "on" or (self.local_model == "auto" and not other_providers)

    def operators(self) -> dict[str, str]:
        """Dashboard operators by name, with their tokens (see charla.core.production.operators)."""
        return production.operators(self)

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """Host names the dashboard and console answer to (lower case, without port): loopback, the host of
        CHARLA_PUBLIC_URL and CHARLA_ALLOWED_HOSTS."""
        public = urlsplit(self.public_url).hostname if self.public_url else None
        extra = [name.lower().strip("[]") for name in _names(self.allowed_hosts_setting)]
        return tuple(dict.fromkeys(["localhost", "127.0.0.1", "::1", *([public] if public else []), *extra]))

    @property
    def loopback_only(self) -> bool:
        """Whether the orchestrator listens only on this machine (CHARLA_HOST is a loopback address)."""
        return self.host in ("localhost", "::1") or self.host.startswith("127.")

    @property
    def dev_secrets(self) -> bool:
        """Whether the published development secrets may stand in for unset ones: only for the local console
        (WHATSAPP_PROVIDER=console) outside production."""
        return self.whatsapp_provider == "console" and self.env != "production"

    def whatsapp_secret(self) -> str | None:
        """The secret Meta-format webhooks are verified with: WHATSAPP_APP_SECRET, else the development value
        for the local console, else None (the route is off)."""
        if self.whatsapp_app_secret:
            return self.whatsapp_app_secret.get_secret_value()
        return DEV_APP_SECRET if self.dev_secrets else None

    def stripe_signing_secret(self) -> str | None:
        """The secret Stripe webhooks are verified with: STRIPE_WEBHOOK_SECRET, else the development value for
        the local console, else None (the route is off)."""
        if self.stripe_webhook_secret:
            return self.stripe_webhook_secret.get_secret_value()
        return DEV_STRIPE_SECRET if self.dev_secrets else None

    @property
    def local_url(self) -> str:
        """Where this machine reaches the orchestrator (CHARLA_PUBLIC_URL when set)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def missing_for_production(self) -> list[str]:
        """Names that production needs and lacks (unset, empty, or an obvious placeholder)."""
        return production.missing_for_production(self)

    @model_validator(mode="after")
    def _refuse_incomplete_production(self) -> Settings:
        production.refuse(self)
        return self


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def load_settings() -> Settings:
    """Read settings from the process environment and `.env`."""
    return Settings()
