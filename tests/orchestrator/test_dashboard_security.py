"""Issue 18, findings 2 and 3: who may use the dashboard and the console, from where, and the record of what
operators did. Against the in-process stack over real HTTP (uvicorn on loopback, real PostgreSQL and Redis)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from charla.ops import takeover
from tests.core.test_settings import PRODUCTION
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually, make_settings
from tests.support.payloads import text_webhook

ALICE = "alice-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
BOB = "bob-9876543210ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvut"
ADMIN = "admin-token-for-the-dashboard-security-tests"
EVIL = "http://evil.example"


@pytest.fixture
async def local(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    """The `make up` setup: console provider on loopback, no token."""
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack:
        yield stack


@pytest.fixture
async def named(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    """A Meta deployment with two named operators and the single CHARLA_ADMIN_TOKEN (operator `admin`)."""
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKENS=f"alice:{ALICE}, bob:{BOB}",
                             CHARLA_ADMIN_TOKEN=ADMIN) as stack:
        yield stack


def origin(stack: Stack) -> dict[str, str]:
    """The headers a browser adds to a same-origin form POST."""
    return {"origin": str(stack.http.base_url).rstrip("/")}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    return found[1]


async def log_in(stack: Stack, token: str) -> httpx.Response:
    page = await stack.http.get("/admin/login")
    return await stack.http.post("/admin/login", data={"token": token, "csrf": csrf_of(page)}, headers=origin(stack))


async def console_learner(stack: Stack, handle: str) -> str:
    """A learner who wrote through the console; their id once the conversation agent has stored them."""
    assert (await stack.http.post("/console/api/text", json={"learner": handle, "text": "Hola"})).status_code == 200

    async def stored() -> bool:
        async with stack.res.pool.connection() as conn:
            return await (await conn.execute("SELECT 1 FROM learners WHERE wa_id = %s", (handle,))).fetchone() \
                is not None
    await eventually(stored, 30, "the console learner to be stored")
    async with stack.res.pool.connection() as conn:
        row = await (await conn.execute("SELECT id FROM learners WHERE wa_id = %s", (handle,))).fetchone()
    assert row is not None
    return str(row[0])


async def exists(stack: Stack, learner_id: str) -> bool:
    async with stack.res.pool.connection() as conn:
        return await (await conn.execute("SELECT 1 FROM learners WHERE id = %s", (learner_id,))).fetchone() is not None


async def audit_rows(stack: Stack) -> list[tuple[str, str, str | None]]:
    async with stack.res.pool.connection() as conn:
        rows = await (await conn.execute("SELECT operator, action, target FROM audit_log ORDER BY id")).fetchall()
    return [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2])) for r in rows]


async def test_cross_site_post_is_refused_and_deletes_nothing(local: Stack) -> None:
    learner_id = await console_learner(local, "ana")
    page = await local.http.get(f"/admin/learners/{learner_id}")  # the local user's own session
    assert page.status_code == 200
    form = {"confirm": "DELETE", "csrf": csrf_of(page)}
    path = f"/admin/learners/{learner_id}/delete"
    for headers in ({"origin": EVIL}, {"origin": "null"}, {"referer": f"{EVIL}/page"}, {},
                    {"origin": "http://127.0.0.1:1"}):  # another local port is another site too
        refused = await local.http.post(path, data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert await exists(local, learner_id)
    assert (await local.http.post("/console/api/text", json={"learner": "ana", "text": "x"},
                                  headers={"origin": EVIL})).status_code == 403
    done = await local.http.post(path, data=form, headers=origin(local))  # the same form from the dashboard
    assert done.status_code == 303
    assert not await exists(local, learner_id)
    assert ("local", "delete-learner", learner_id) in await audit_rows(local)


async def test_a_foreign_host_is_refused(db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console",
                             CHARLA_ALLOWED_HOSTS="charla.lan") as stack:
        for path in ("/admin", "/admin/login", "/console", "/console/api/learners"):
            rebound = await stack.http.get(path, headers={"host": "evil.example:8000"})
            assert rebound.status_code == 400, path
            assert "Host" in rebound.text
        assert (await stack.http.get("/console", headers={"host": "localhost:9000"})).status_code == 200
        assert (await stack.http.get("/console", headers={"host": "charla.lan"})).status_code == 200
        assert (await stack.http.get("/healthz", headers={"host": "10.0.0.7:8000"})).status_code == 200  # probes


async def test_console_mode_on_a_public_address_needs_a_token(db: str, default_redis_server: str,
                                                              redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console",
                             CHARLA_HOST="0.0.0.0") as stack:  # noqa: S104 - the point of the test
        off = await stack.http.get("/admin")
        assert off.status_code == 503
        assert "CHARLA_ADMIN_TOKEN" in off.json()["detail"]


@pytest.mark.parametrize("env", [{"CHARLA_ADMIN_TOKEN": "1234"},
                                 {"CHARLA_ADMIN_TOKEN": "x" * 64},
                                 {"CHARLA_ADMIN_TOKENS": f"alice:{ALICE},bob:short-but-not-32-bytes"}])
def test_production_refuses_a_token_shorter_than_32_random_bytes(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(**{**PRODUCTION, **env})
    message = caught.value.errors()[0]["msg"]
    assert "secrets.token_urlsafe(32)" in message
    assert "1234" not in message
    assert "short-but" not in message


def test_named_operators_are_read_and_checked() -> None:
    strong = make_settings(**{**PRODUCTION, "CHARLA_ADMIN_TOKEN": "", "CHARLA_ADMIN_TOKENS": f"alice:{ALICE}"})
    assert strong.operators() == {"alice": ALICE}
    assert make_settings(CHARLA_ADMIN_TOKENS=f"alice:{ALICE}", CHARLA_ADMIN_TOKEN=ADMIN).operators() == {
        "alice": ALICE, "admin": ADMIN}
    for malformed in (f"{ALICE}", f"al ice:{ALICE}", f"alice:{ALICE},alice:{BOB}", "alice:"):
        with pytest.raises(ValidationError, match="CHARLA_ADMIN_TOKENS") as caught:
            make_settings(CHARLA_ADMIN_TOKENS=malformed)
        assert ALICE not in caught.value.errors()[0]["msg"]  # a token pasted without its name is not echoed


async def test_the_session_cookie_is_secure_behind_https(db: str, default_redis_server: str,
                                                         redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKEN=ADMIN,
                             CHARLA_PUBLIC_URL="https://charla.example.com") as stack:
        page = await stack.http.get("/admin/login", headers={"host": "charla.example.com"})
        assert "Secure" in page.headers["set-cookie"]
        login_cookie = page.cookies["charla_login"]  # httpx keeps a Secure cookie from going back over http
        answer = await stack.http.post("/admin/login", data={"token": ADMIN, "csrf": csrf_of(page)}, headers={
            "cookie": f"charla_login={login_cookie}", "origin": "https://charla.example.com"})
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("charla_admin="))
        for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/admin", "Max-Age=43200"):
            assert flag in cookie


async def test_the_sixth_wrong_login_is_locked_out(named: Stack) -> None:
    for _ in range(5):
        wrong = await log_in(named, "not-a-token")
        assert wrong.status_code == 303
        assert wrong.headers["location"].endswith("flash=bad-token")
    locked = await log_in(named, ALICE)  # even the right token waits now
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 900
    assert "Too many wrong tokens" in locked.text
    assert "charla_admin" not in named.http.cookies
    assert [a for _, a, _ in await audit_rows(named)] == ["login-failed"] * 5
    assert (await named.http.get("/admin", headers={"authorization": f"Bearer {BOB}"})).status_code == 200


async def test_logout_revokes_the_session_cookie(named: Stack) -> None:
    assert (await log_in(named, BOB)).status_code == 303
    cookie = named.http.cookies["charla_admin"]
    assert len(cookie) >= 43
    assert BOB not in cookie
    page = await named.http.get("/admin")
    assert page.status_code == 200
    assert ">bob<" in page.text
    out = await named.http.post("/admin/logout", data={"csrf": csrf_of(page)}, headers=origin(named))
    assert out.headers["location"] == "/admin/login?flash=logged-out"
    assert await stale(named, cookie) == "/admin/login"
    assert [(o, a) for o, a, _ in await audit_rows(named)] == [("bob", "login"), ("bob", "logout")]


async def test_a_post_without_the_csrf_token_is_refused(named: Stack, db: str) -> None:
    learner_id = await _meta_learner(named, "34600000031")
    assert (await log_in(named, ALICE)).status_code == 303
    page = await named.http.get(f"/admin/learners/{learner_id}")
    path = f"/admin/learners/{learner_id}/take"
    for form in ({}, {"csrf": "forged"}):
        refused = await named.http.post(path, data=form, headers=origin(named))
        assert refused.status_code == 403
        assert "form token" in refused.json()["detail"]
    assert await takeover.holder(named.res.redis, uuid.UUID(learner_id)) is None
    taken = await named.http.post(path, data={"csrf": csrf_of(page)}, headers=origin(named))
    assert taken.headers["location"].endswith("flash=taken")
    login = await named.http.post("/admin/login", data={"token": ALICE}, headers=origin(named))  # no login form
    assert login.headers["location"].endswith("flash=form-expired")


async def test_security_headers_on_every_page(local: Stack) -> None:
    for path in ("/admin", "/admin/login", "/admin/audit", "/console", "/console/pay?client_reference_id=x1",
                 "/admin/nope"):
        answer = await local.http.get(path)
        headers = answer.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"]
        assert (headers["x-content-type-options"], headers["x-frame-options"]) == ("nosniff", "DENY")
        assert headers["referrer-policy"] == "same-origin"
        assert "<script>" not in answer.text, path  # inline scripts would be blocked: none are used
    refused = await local.http.get("/admin", headers={"host": "evil.example"})
    assert refused.headers["x-frame-options"] == "DENY"


async def test_unknown_flash_text_is_not_echoed(local: Stack) -> None:
    planted = "Your session expired, call +1 555 0100 to verify"
    for query in (f"flash={planted}", f"flash=audience&n={planted}", "flash=audience&n=<b>1</b>"):
        page = await local.http.get(f"/admin?{query}")
        assert "555 0100" not in page.text
        assert "<b>1</b>" not in page.text
        assert 'class="flash' not in page.text
    shown = await local.http.get("/admin/broadcasts?flash=audience&n=12")
    assert "12 learner(s) match; nothing was sent." in shown.text


async def _meta_learner(stack: Stack, wa_id: str) -> str:
    await stack.post(text_webhook(wa_id, f"wamid.{wa_id}", "Hola"))
    await stack.fake.wait_for(1, seconds=30)
    async with stack.res.pool.connection() as conn:
        row = await (await conn.execute("SELECT id FROM learners WHERE wa_id = %s", (wa_id,))).fetchone()
    assert row is not None
    return str(row[0])


async def test_operator_actions_are_audited_by_name_and_shown(named: Stack) -> None:
    learner_id = await _meta_learner(named, "34600000032")
    alice, admin = {"authorization": f"Bearer {ALICE}"}, {"authorization": f"Bearer {ADMIN}"}
    http = named.http
    await http.post(f"/admin/learners/{learner_id}/take", headers=alice)
    await http.post(f"/admin/learners/{learner_id}/reply", data={"text": "Soy Alicia"}, headers=alice)
    await http.post(f"/admin/learners/{learner_id}/release", headers=alice)
    await http.post("/admin/broadcasts", data={"text": "Nuevo tema"}, headers=admin)
    await http.post("/admin/dead/replay", headers=admin)
    assert (await log_in(named, BOB)).status_code == 303
    await http.post(f"/admin/learners/{learner_id}/delete", headers=origin(named),
                    data={"confirm": "DELETE", "csrf": csrf_of(await http.get("/admin/audit"))})
    rows = await audit_rows(named)
    assert [(o, a) for o, a, _ in rows] == [
        ("alice", "take-over"), ("alice", "reply"), ("alice", "release"), ("admin", "broadcast-send"),
        ("admin", "dead-replay-all"), ("bob", "login"), ("bob", "delete-learner")]
    assert rows[0][2] == rows[-1][2] == learner_id
    page = await http.get("/admin/audit")
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", " ", page.text)
    assert text.index("delete-learner") < text.index("broadcast-send") < text.index("take-over")  # newest first
    assert "Nuevo tema" in text
    assert "10 characters" in text
    assert "Soy Alicia" not in text
    assert 'href="/admin/audit"' in page.text


async def stale(stack: Stack, cookie: str) -> str:
    """Where /admin sends a browser that still has `cookie`."""
    async with httpx.AsyncClient(base_url=stack.http.base_url, cookies={"charla_admin": cookie}) as browser:
        return str((await browser.get("/admin")).headers.get("location", ""))


async def test_sessions_end_when_their_operator_is_no_longer_configured(db: str, default_redis_server: str,
                                                                       redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack:
        assert (await stack.http.get("/admin")).status_code == 200
        local_cookie = stack.http.cookies["charla_admin"]
        assert await stale(stack, local_cookie) == ""  # the open local session works
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console",
                             CHARLA_ADMIN_TOKENS=f"alice:{ALICE}") as stack:
        assert await stale(stack, local_cookie) == "/admin/login"  # a token was set: the local session is over
        assert (await log_in(stack, ALICE)).status_code == 303
        alice_cookie = stack.http.cookies["charla_admin"]
        assert await stale(stack, alice_cookie) == ""
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKENS=f"bob:{BOB}") as stack:
        assert await stale(stack, alice_cookie) == "/admin/login"  # alice's token was removed
