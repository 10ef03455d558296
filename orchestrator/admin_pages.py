"""The dashboard's pages: templates, the fixed set of flash messages, redirects back with one, and the
session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from charla.channels.registry import local_console
from charla.core.settings import Settings
from orchestrator.guard import SESSION_COOKIE
from orchestrator.operators import Operator

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Every message a page can show, by the key its redirect names (`?flash=key`, and `n=` for a count or an id):
# no text from the query reaches the page. (message, is it bad news)
FLASH: dict[str, tuple[str, bool]] = {
    "bad-token": ("That token belongs to no dashboard operator.", True),
    "form-expired": ("That form expired (or came from elsewhere): reload the page and try again.", True),
    "locked": ("Too many wrong tokens from here: wait a few minutes before trying again.", True),
    "logged-out": ("Logged out.", False),
    "confirm-delete": ("Type DELETE to confirm.", True),
    "already-deleted": ("That learner was already deleted.", True),
    "deleted": ("The learner and everything about them was deleted.", False),
    "taken": ("You are answering this learner; the AI is paused.", False),
    "released": ("Handed back to the AI.", False),
    "not-held": ("Nobody held it.", True),
    "reply-length": ("Write 1 to 4096 characters.", True),
    "take-first": ("Take over first, so the AI does not answer too.", True),
    "learner-gone": ("That learner no longer exists.", True),
    "sent": ("Sent.", False),
    "replayed": ("Replayed: the event is back on its stream.", False),
    "replayed-all": ("{n} event(s) replayed.", False),
    "dead-not-found": ("No such dead letter (replayed or dropped already?).", True),
    "dead-already-replayed": ("That event was replayed before; its leftover entry was removed.", True),
    "dead-not-replayable": ("That event cannot be replayed as it is (see `charla dead show`).", True),
    "dropped": ("Dropped.", False),
    "already-gone": ("It was already gone.", True),
    "broadcast-length": ("Write the message (1 to 4096 characters).", True),
    "audience": ("{n} learner(s) match; nothing was sent.", False),
    "broadcast-started": ("Broadcast #{n} is going out.", False),
    "cancelled": ("Cancelled.", False),
    "finished": ("It had already finished.", True),
}

def open_locally(settings: Settings) -> bool:
    return not settings.operators() and local_console(settings) and settings.loopback_only

def flash_message(key: str | None, n: str | None) -> tuple[str, bool] | None:
    """The fixed message a redirect named, with its count or id filled in; None for an unknown key or a
    parameter that is not a plain number."""
    found = FLASH.get(key or "")
    if found is None:
        return None
    text, bad = found
    if "{n}" in text:
        if n is None or not n.isdecimal() or len(n) > 12:
            return None
        text = text.replace("{n}", n)
    return text, bad

def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    flash = flash_message(request.query_params.get("flash"), request.query_params.get("n"))
    who: Operator | None = getattr(request.state, "operator", None)
    signed_in = who is not None and who.csrf is not None and not open_locally(request.app.state.res.settings)
    page = TEMPLATES.TemplateResponse(request, name, {"flash": flash, "who": who.name if who else None,
                                                      "csrf": who.csrf if who and who.csrf else "",
                                                      "signed_in": signed_in, **context}, status_code=status_code)
    if new_session := getattr(request.state, "new_session", None):
        set_session_cookie(page, request.app.state.res.settings, new_session)
    return page

def set_session_cookie(response: Response, settings: Settings, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=secure(settings),
                        max_age=settings.admin_session_s, path="/admin")

def secure(settings: Settings) -> bool:
    return bool(settings.public_url and settings.public_url.startswith("https"))

def back(path: str, flash: str, n: int | None = None) -> RedirectResponse:
    assert flash in FLASH, flash  # a programming error, caught by the tests
    return RedirectResponse(f"{path}?flash={flash}" + (f"&n={n}" if n is not None else ""), status_code=303)
