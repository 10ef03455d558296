"""The one settings object: provider inference, production refusal, `.env`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from charla.core.settings import Settings
from tests.support.helpers import make_settings

PRODUCTION = {"CHARLA_ENV": "production", "CHARLA_ADMIN_TOKEN": "k3Jx9Qm2Vt7Lr5Wn8Pz4Hy6Bd1Fg0Sc-Ua_Ee2Ii3Oo",
              "WHATSAPP_ACCESS_TOKEN": "EAAG-real-token", "WHATSAPP_APP_SECRET": "0123abcd",
              "WHATSAPP_VERIFY_TOKEN": "verify-me", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
              "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
              "STRIPE_PAYMENT_LINK": "https://buy.stripe.com/x", "GROQ_API_KEY": "gsk_x",
              "CHARLA_SECRET_KEY": "9f2c4e1a7b3d5f6e8a0c2b4d6f8e0a1c3b5d7f9e"}


def test_defaults_are_the_local_console_and_contract_values() -> None:
    settings = make_settings()
    assert settings.whatsapp_provider == "console"
    assert (settings.port, settings.free_messages, settings.paid_daily_messages) == (8000, 50, 500)
    assert settings.home == Path(".charla")
    assert settings.database_url is None
    assert settings.redis_url is None


@pytest.mark.parametrize(("env", "provider"), [
    ({"WHATSAPP_ACCESS_TOKEN": "t"}, "meta"),
    ({"TWILIO_AUTH_TOKEN": "t"}, "twilio"),
    ({"WHATSAPP_ACCESS_TOKEN": "t", "TWILIO_AUTH_TOKEN": "t"}, "meta"),
    ({"WHATSAPP_ACCESS_TOKEN": "t", "WHATSAPP_PROVIDER": "console"}, "console"),
])
def test_provider_is_inferred_from_credentials(env: dict[str, str], provider: str) -> None:
    assert make_settings(**env).whatsapp_provider == provider


def test_unrelated_environment_names_do_not_leak_in() -> None:
    settings = make_settings(HOME="/root", HOST="0.0.0.0", PORT="1")  # noqa: S104
    assert settings.home == Path(".charla")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_complete_production_configuration_starts() -> None:
    assert make_settings(**PRODUCTION).env == "production"


def test_production_names_every_missing_secret() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k not in ("WHATSAPP_APP_SECRET", "STRIPE_WEBHOOK_SECRET")}
    with pytest.raises(ValidationError) as caught:
        make_settings(**env)
    message = caught.value.errors()[0]["msg"]  # what the CLI prints (never the input values)
    assert "WHATSAPP_APP_SECRET" in message
    assert "STRIPE_WEBHOOK_SECRET" in message
    assert "GROQ_API_KEY" not in message


@pytest.mark.parametrize("placeholder", ["changeme", "", "  ", "TODO"])
def test_production_refuses_placeholder_secrets(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="CHARLA_ADMIN_TOKEN"):
        make_settings(**{**PRODUCTION, "CHARLA_ADMIN_TOKEN": placeholder})


def test_production_refuses_the_console_and_needs_some_llm() -> None:
    with pytest.raises(ValidationError, match="console"):
        make_settings(**{**PRODUCTION, "WHATSAPP_PROVIDER": "console"})
    without_llm = {k: v for k, v in PRODUCTION.items() if k != "GROQ_API_KEY"}
    with pytest.raises(ValidationError, match="OPENAI_BASE_URL"):
        make_settings(**without_llm)


def test_twilio_production_needs_the_public_url() -> None:
    env = {k: v for k, v in PRODUCTION.items() if not k.startswith("WHATSAPP_")}
    env |= {"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok"}
    with pytest.raises(ValidationError, match="CHARLA_PUBLIC_URL"):
        make_settings(**env)
    assert make_settings(**env, CHARLA_PUBLIC_URL="https://charla.example.com").whatsapp_provider == "twilio"


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("FREE_MESSAGES=7\nCHARLA_PORT=9000\n")
    monkeypatch.chdir(tmp_path)
    for name in ("FREE_MESSAGES", "CHARLA_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.free_messages, settings.port) == (7, 9000)
    assert "FREE_MESSAGES" not in os.environ
