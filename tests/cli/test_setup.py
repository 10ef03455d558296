"""`charla setup`: asks for the keys (Groq first), rejects answers of the wrong shape, keeps what `.env`
already has, and writes a private file the settings read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from charla.cli import setup
from charla.cli.root import app
from charla.core.settings import Settings

runner = CliRunner()
GROQ_KEY = "gsk_" + "a1B2" * 8
SKIP_THE_REST = "\n" * (len(setup.QUESTIONS) - 1)


def test_the_groq_key_comes_first_and_a_wrong_shape_is_asked_again(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("CHARLA_LOG_LEVEL=debug\n")
    result = runner.invoke(app, ["setup", "--env-file", str(env)], input=f"sk-not-groq\n{GROQ_KEY}\n{SKIP_THE_REST}")
    assert result.exit_code == 0, result.output
    assert result.output.index("Groq API key") < result.output.index("Anthropic API key")
    assert "does not look like a GROQ_API_KEY" in result.output
    assert GROQ_KEY not in result.output  # secrets are not echoed
    text = env.read_text()
    assert f"GROQ_API_KEY={GROQ_KEY}" in text
    assert "CHARLA_LOG_LEVEL=debug" in text  # kept
    assert "ANTHROPIC_API_KEY" not in text  # skipped
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    settings = Settings(_env_file=env)
    assert settings.groq_api_key is not None
    assert settings.groq_api_key.get_secret_value() == GROQ_KEY


def test_whatsapp_and_stripe_settings_are_checked_and_enter_keeps_the_current_value(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"GROQ_API_KEY={GROQ_KEY}\n")
    answers = ["", "", "EAAG" + "x" * 30, "12345", "106540352242922", "0" * 32, "v" * 20, "sk_live_" + "k" * 24,
               "whsec_" + "w" * 20, "https://buy.stripe.com/test_123"]
    result = runner.invoke(app, ["setup", "--env-file", str(env)], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "does not look like a WHATSAPP_PHONE_NUMBER_ID" in result.output
    values = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in env.read_text().splitlines()}
    assert values["GROQ_API_KEY"] == GROQ_KEY
    assert values["WHATSAPP_PHONE_NUMBER_ID"] == "106540352242922"
    assert values["STRIPE_PAYMENT_LINK"] == "https://buy.stripe.com/test_123"
    assert "full tutor" in result.output


def test_without_any_model_key_setup_says_offline_mode(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    result = runner.invoke(app, ["setup", "--env-file", str(env)], input="\n" * len(setup.QUESTIONS))
    assert result.exit_code == 0, result.output
    assert "offline mode" in result.output
    assert not setup.has_model_key(env)


def test_up_without_a_model_key_points_to_setup(tmp_path: Path) -> None:
    env = {"CHARLA_HOME": str(tmp_path), "GROQ_API_KEY": "", "ANTHROPIC_API_KEY": "", "OPENAI_BASE_URL": ""}
    result = runner.invoke(app, ["up", "--agents", "nope"], env=env)  # stops before starting anything
    assert "no model key set: offline mode" in result.output
    assert "charla setup" in result.output
    with_key = runner.invoke(app, ["up", "--agents", "nope"], env={**env, "GROQ_API_KEY": GROQ_KEY})
    assert "charla setup" not in with_key.output
