"""Who is operating the dashboard: the gate every /admin route depends on (Bearer token or login session,
the CSRF token of forms, the open local console), and the login and logout pages."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from charla.core.runtime import Resources
from charla.ops import audit
from orchestrator import operators
from orchestrator.admin_pages import FLASH, back, open_locally, render, secure, set_session_cookie
from orchestrator.deps import Res
from orchestrator.guard import SESSION_COOKIE
from orchestrator.operators import Operator

log = logging.getLogger(__name__)

LOGIN_COOKIE = "charla_login"  # the login form's own CSRF token (double submit: no session exists yet)

class NeedsLogin(Exception):
    """An HTML request without a valid token: answered with a redirect to the login page."""

async def operator(request: Request) -> Operator:
    """Who is operating: the dashboard's gate (see the module docstring). A GET in the open local setup
    gets a session of its own (operator `local`), so its forms carry a CSRF token like everyone's."""
    res: Resources = request.app.state.res
    bearer = request.headers.get("authorization")
    if bearer is not None:
        name = operators.by_token(res.settings, bearer.removeprefix("Bearer ").strip())
        if name is None:
            raise HTTPException(401, "wrong bearer token")
        return _remember(request, Operator(name))
    local = open_locally(res.settings)
    if not res.settings.operators() and not local:
        raise HTTPException(503, "the dashboard is off: set CHARLA_ADMIN_TOKENS or CHARLA_ADMIN_TOKEN and restart "
                                 "the orchestrator (it is open without one only to the console on a loopback "
                                 "CHARLA_HOST)")
    found = await operators.session(res.redis, request.cookies.get(SESSION_COOKIE, ""))
    # Only sessions of operators configured now: removing a token (or setting the first) ends its sessions.
    if found is not None and found.name in ({"local"} if local else res.settings.operators()):
        return _remember(request, found)
    if request.method != "GET":
        raise HTTPException(401, "log in first (or send Authorization: Bearer <token>)")
    if not local:
        raise NeedsLogin
    session_id, opened = await operators.open_session(res.redis, "local", res.settings.admin_session_s)
    request.state.new_session = session_id
    return _remember(request, opened)

def _remember(request: Request, who: Operator) -> Operator:
    request.state.operator = who
    return who

async def acting(who: Annotated[Operator, Depends(operator)], csrf: Annotated[str, Form()] = "") -> Operator:
    """The operator of a POST, whose form carries its session's CSRF token (Bearer requests need none)."""
    if who.csrf is not None and not hmac.compare_digest(csrf.encode(), who.csrf.encode()):
        raise HTTPException(403, "missing or stale form token: reload the page and try again")
    return who

Viewer = Annotated[Operator, Depends(operator)]

Acting = Annotated[Operator, Depends(acting)]

def login_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/admin/login", status_code=303)

async def login_page(request: Request) -> Response:
    if open_locally(request.app.state.res.settings):
        return RedirectResponse("/admin", status_code=303)  # nothing to log in with: the local user is in
    form_token = secrets.token_urlsafe(32)
    page = render(request, "admin_login.html", login_csrf=form_token)
    page.set_cookie(LOGIN_COOKIE, form_token, httponly=True, samesite="strict",
                    secure=secure(request.app.state.res.settings), max_age=3600, path="/admin")
    return page

def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"

async def login(request: Request, res: Res, token: Annotated[str, Form(max_length=512)],
                csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """Check the login form's token, then the rate limit, then the operator token; open a session."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return back("/admin/login", "form-expired")
    client = _client(request)
    if wait := await operators.locked_for(res.redis, res.settings, client):
        log.warning("dashboard login from %s refused: locked out for %d s", client, wait)
        page = render(request, "admin_login.html", status_code=429, login_csrf=expected, flash=FLASH["locked"])
        page.headers["Retry-After"] = str(wait)
        return page
    name = operators.by_token(res.settings, token.strip())
    async with res.pool.connection() as conn:
        await audit.record(conn, name or "unknown", "login" if name else "login-failed", detail=f"from {client}")
    if name is None:
        await operators.failed(res.redis, res.settings, client)
        log.warning("dashboard login from %s: wrong token", client)
        return back("/admin/login", "bad-token")
    await operators.succeeded(res.redis, client)
    session_id, _ = await operators.open_session(res.redis, name, res.settings.admin_session_s)
    log.info("dashboard login: %s from %s", name, client)
    answer = RedirectResponse("/admin", status_code=303)
    set_session_cookie(answer, res.settings, session_id)
    answer.delete_cookie(LOGIN_COOKIE, path="/admin")
    return answer

async def logout(request: Request, res: Res, who: Acting) -> Response:
    await operators.close_session(res.redis, request.cookies.get(SESSION_COOKIE, ""))
    async with res.pool.connection() as conn:
        await audit.record(conn, who.name, "logout")
    answer = back("/admin/login", "logged-out")
    answer.delete_cookie(SESSION_COOKIE, path="/admin")
    return answer
