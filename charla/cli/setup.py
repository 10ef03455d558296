"""`charla setup`: the first run. Asks for the model provider keys (Groq's free tier first), then the
WhatsApp and Stripe settings, checks the shape of each answer, and writes them to `.env` (0600), keeping
what is already there. Every question may be skipped: without any model key Charla runs in offline mode."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import click
import dotenv
import typer

from charla.cli.common import progress

app = typer.Typer()


@dataclass(frozen=True)
class Ask:
    name: str
    question: str
    shape: str  # a regular expression the whole answer must match
    example: str
    secret: bool = True


GROQ = Ask("GROQ_API_KEY", "Groq API key (free tier: https://console.groq.com/keys)", r"gsk_[A-Za-z0-9]{20,}",
           "gsk_…")
# In the order asked: the model first (the tutor), then the channel, then payments.
QUESTIONS = (
    GROQ,
    Ask("ANTHROPIC_API_KEY", "Anthropic API key (hard grammar questions, second opinions)",
        r"sk-ant-[A-Za-z0-9_-]{20,}", "sk-ant-…"),
    Ask("WHATSAPP_ACCESS_TOKEN", "WhatsApp Cloud API access token (Meta app dashboard)", r"EA[A-Za-z0-9]{20,}",
        "EAAG…"),
    Ask("WHATSAPP_PHONE_NUMBER_ID", "WhatsApp phone number id", r"\d{10,20}", "106540352242922", secret=False),
    Ask("WHATSAPP_APP_SECRET", "Meta app secret (signs the webhooks)", r"[0-9a-f]{32}", "32 hex characters"),
    Ask("WHATSAPP_VERIFY_TOKEN", "Webhook verify token (any string you choose, 16+ characters)", r"\S{16,}",
        "a long random string"),
    Ask("STRIPE_SECRET_KEY", "Stripe secret key", r"(sk|rk)_(test|live)_[A-Za-z0-9]{16,}", "sk_test_…"),
    Ask("STRIPE_WEBHOOK_SECRET", "Stripe webhook signing secret", r"whsec_[A-Za-z0-9]{16,}", "whsec_…"),
    Ask("STRIPE_PAYMENT_LINK", "Stripe Payment Link URL", r"https://buy\.stripe\.com/\S+",
        "https://buy.stripe.com/…", secret=False),
)
MODEL_KEYS = ("GROQ_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL")


def valid(ask: Ask, answer: str) -> str:
    """`answer` stripped, if it has the setting's shape (or is empty: skipped); click asks again otherwise."""
    answer = answer.strip()
    if answer and not re.fullmatch(ask.shape, answer):
        raise click.BadParameter(f"that does not look like a {ask.name} ({ask.example}); leave empty to skip")
    return answer


def has_model_key(env_file: Path) -> bool:
    """A model provider is configured, in the environment or in `env_file`."""
    found = dotenv.dotenv_values(env_file) if env_file.exists() else {}
    return any(os.environ.get(name) or found.get(name) for name in MODEL_KEYS)


@app.command()
def setup(env_file: Annotated[Path, typer.Option("--env-file", help="The file to write.")] = Path(".env")) -> None:
    """Ask for the provider keys (Groq first), WhatsApp and Stripe settings; check them; write `.env`."""
    known = dotenv.dotenv_values(env_file) if env_file.exists() else {}
    env_file.touch(mode=0o600, exist_ok=True)
    env_file.chmod(0o600)
    for ask in QUESTIONS:
        kept = known.get(ask.name) or ""
        hint = " (Enter keeps the current one)" if kept else " (Enter skips)"
        answer: str = click.prompt(ask.question + hint, default="", show_default=False, hide_input=ask.secret,
                                   value_proc=functools.partial(valid, ask))
        if answer:
            dotenv.set_key(env_file, ask.name, answer, quote_mode="never")
    if has_model_key(env_file):
        progress(f"wrote {env_file}: `charla up` (or `make up`) starts the full tutor")
    else:
        progress(f"wrote {env_file} without a model key: Charla runs in offline mode (checker corrections and "
                 "follow-up questions); run `charla setup` again with a Groq key for the full tutor")
