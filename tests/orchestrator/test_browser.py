"""The console and the dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against
the in-process stack (console provider, fake LLM). Screenshots go to tests/artifacts/ (kept by CI)."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from redis.asyncio import Redis

from charla.core.catalog import say
from tests.support.harness import Stack, running_stack, running_voice_stack
from tests.support.voice_kit import speak

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def voice_wav() -> Path:
    """A generated spoken phrase, fed to chromium as its (fake) microphone."""
    import wave

    import numpy as np

    samples = speak("I would like a coffee, please.", "en")
    path = ARTIFACTS / "microphone.wav"
    ARTIFACTS.mkdir(exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        pcm = np.concatenate([np.zeros(8000, np.float32), samples, np.zeros(16000, np.float32)])
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
async def browser(voice_wav: Path) -> AsyncIterator[Browser]:
    assert CHROMIUM, "chromium is missing: `apt-get install chromium` (.ci/run installs it)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={voice_wav}"])
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def open_console(browser: Browser, stack: Stack, handle: str) -> Page:
    page = await browser.new_page(viewport={"width": 1200, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(str(stack.http.base_url.join("/console")))
    await page.fill("#new-learner input[name=handle]", handle)
    await page.fill("#new-learner input[name=name]", handle.capitalize())
    await page.click("#new-learner button")
    # Locator assertions, not wait_for_function(string): polling a string evaluates it with eval, which the
    # pages' CSP (script-src 'self') refuses.
    await expect(page.locator("body")).to_have_attribute("data-ready", handle)
    return page


@pytest.fixture
async def console_stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack:
        yield stack


async def test_send_text_and_see_the_reply(browser: Browser, console_stack: Stack) -> None:
    page = await open_console(browser, console_stack, "ana")
    await page.fill("#text", "Yo tengo un gato")
    await page.press("#text", "Enter")
    reply = page.locator(".bubble.out").first
    await expect(reply).to_contain_text("Echo: Yo tengo un gato")
    # The learner's bubble turns read (blue ticks) once the conversation agent picked it up.
    await expect(page.locator(".bubble.in .ticks.read")).to_have_count(1)
    await expect(page.locator("#banner")).to_contain_text("groq")
    await shot(page, "console-text")


async def test_tap_a_button(browser: Browser, console_stack: Stack) -> None:
    page = await open_console(browser, console_stack, "bea")
    await page.fill("#text", "delete my data")
    await page.press("#text", "Enter")
    buttons = page.locator(".bubble.out .choices.buttons button")
    await expect(buttons).to_have_count(2)
    await expect(page.locator(".bubble.out").first).not_to_contain_text("1. ")  # the buttons, not a numbered copy
    await shot(page, "console-buttons")
    await buttons.last.click()  # "No, keep it"
    await expect(page.locator(".bubble.out")).to_have_count(2)
    await expect(page.locator(".bubble.in")).to_have_count(2)
    await shot(page, "console-button-tapped")


async def test_record_a_voice_note_and_play_the_reply(browser: Browser, db: str, default_redis_server: str,
                                                      redis_default: Redis) -> None:
    async with running_voice_stack(db, default_redis_server, WHATSAPP_PROVIDER="console",
                                   CHARLA_DEFAULT_TARGET_LANGUAGE="en") as stack:
        stack.llm.script["groq"] = [json.dumps({"reply": "Very good! Listen:", "voice_example": True,
                                                "say": "a cup of coffee"})]
        page = await open_console(browser, stack, "cai")
        await page.click("#record")
        await expect(page.locator("#record")).to_have_attribute("data-seconds", re.compile(r"^([3-9]|\d{2,})"))
        await page.click("#record")
        reply = page.locator(".bubble.out").first
        await expect(reply).to_contain_text("coffee", timeout=120_000)
        audio = page.locator(".bubble.out audio")
        await expect(audio).to_have_count(1, timeout=120_000)
        # Chromium fetches /media/<token>.ogg, decodes the Ogg/Opus note and plays it to the end.
        seconds = await audio.evaluate("""a => new Promise((done, fail) => {
            a.muted = true; a.onended = () => done(a.duration); a.onerror = () => fail(a.error.message);
            a.play().catch(fail); })""")
        assert 0.3 < seconds < 10
        await shot(page, "console-voice")


async def test_dashboard_charts_render(browser: Browser, console_stack: Stack) -> None:
    page = await open_console(browser, console_stack, "dee")
    for n, text in enumerate(("Hola", "Tengo veinte años"), 1):
        await page.fill("#text", text)
        await page.press("#text", "Enter")
        await expect(page.locator(".bubble.out")).to_have_count(n)
    await page.goto(str(console_stack.http.base_url.join("/admin")))
    charts = page.locator("section.chart svg.pygal-chart")
    await expect(charts).to_have_count(9)
    # Drawn, not empty: the messages chart has bars and the latency chart has its two series.
    await expect(page.locator("#chart-messages svg .series rect").last).to_be_visible()
    await expect(page.locator("#chart-latency svg .legends")).to_contain_text("p95")
    assert await page.locator(".tile .v").first.inner_text() == "1"
    await shot(page, "dashboard")
    await page.click("text=Learners")
    await page.click("text=Dee")
    await expect(page.locator("#conversation .bubble")).to_have_count(4)
    await shot(page, "dashboard-learner")


async def test_dashboard_forms_work_under_the_csp_and_are_audited(browser: Browser, console_stack: Stack) -> None:
    """Real form POSTs from chromium carry their CSRF token and a same-origin Origin, and the pages break no
    rule of their Content-Security-Policy (a violation is logged to the console as an error)."""
    page = await open_console(browser, console_stack, "eli")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await page.fill("#text", "Hola")
    await page.press("#text", "Enter")
    await expect(page.locator(".bubble.out")).to_have_count(1, timeout=TIMEOUT_MS)
    await page.goto(str(console_stack.http.base_url.join("/admin/learners")))
    await page.click("text=Eli")
    await page.click("text=Take over")
    await expect(page.locator(".flash")).to_contain_text("You are answering this learner", timeout=TIMEOUT_MS)
    await page.fill("form.reply input[name=text]", "Soy Marta, tu tutora.")
    await page.click("form.reply button")
    await expect(page.locator(".flash")).to_have_text("Sent.", timeout=TIMEOUT_MS)
    await page.click("text=Hand back to the AI")
    await expect(page.locator(".flash")).to_have_text("Handed back to the AI.", timeout=TIMEOUT_MS)
    await page.click("text=Broadcasts")
    await page.fill("textarea[name=text]", "Nuevo tema: viajes")
    await page.click("text=Count the audience")
    await expect(page.locator(".flash")).to_contain_text("1 learner(s) match", timeout=TIMEOUT_MS)
    await page.click("text=Audit log")
    rows = page.locator("table.audit tr")
    await expect(rows).to_have_count(4, timeout=TIMEOUT_MS)  # header, take-over, reply, release (counting is no action)
    await expect(rows.nth(1)).to_contain_text("release", timeout=TIMEOUT_MS)
    await expect(rows.nth(3)).to_contain_text("local", timeout=TIMEOUT_MS)
    await page.goto(str(console_stack.http.base_url.join("/admin")))
    await expect(page.locator("section.chart svg.pygal-chart")).to_have_count(9, timeout=TIMEOUT_MS)
    await page.goto(str(console_stack.http.base_url.join("/admin/audit")))
    await shot(page, "dashboard-audit")
    assert violations == []


@pytest.fixture
async def offline_console(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    """The console as `make up` gives it without a model key: the checker and the question bank answer."""
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console", CHARLA_LOCAL_MODEL="on",
                             CHARLA_LLM_CHAIN="local", CHARLA_LLM_HARD_CHAIN="local",
                             CHARLA_OFFLINE_MODEL_S="0") as stack:
        yield stack


async def test_offline_console_corrects_at_once_and_never_repeats_itself(browser: Browser,
                                                                         offline_console: Stack) -> None:
    page = await open_console(browser, offline_console, "ana")
    said = ["Hola! Me llamo Ana y soy inglesa.", "Yo soy cansado porque trabajo mucho.",
            "Ayer yo voy a la playa con mi amigos.", "help"]
    for n, text in enumerate(said, 1):
        await page.fill("#text", text)
        started = time.perf_counter()
        await page.press("#text", "Enter")
        await expect(page.locator(".bubble.out")).to_have_count(n)
        if n == 2:
            assert time.perf_counter() - started < 1.0, "an offline turn answers within a second"
            reply = page.locator(".bubble.out").nth(1)
            await expect(reply).to_contain_text("estoy cansado")
            await expect(reply).to_contain_text("estar")
    third = page.locator(".bubble.out").nth(2)
    await expect(third).to_contain_text("fui")
    await expect(third).to_contain_text("mis amigos")
    await expect(page.locator(".bubble.out").nth(3)).to_contain_text("Charla")  # help: the command, only
    await expect(page.locator(".bubble.out")).to_have_count(len(said))
    # No line twice, in a reply or across them, but Charla's fixed labels (the demo note, "Almost!").
    # (as drawn: the console renders WhatsApp's _italic_ and *bold*, markers gone)
    fixed = {say(key, "en").strip("_*") for key in ("demo_note", "offline.fix", "offline.fine")}
    lines = [line.strip() for text in await page.locator(".bubble.out .body").all_inner_texts()
             for line in text.splitlines() if line.strip() and line.strip() not in fixed]
    assert len(lines) == len(set(lines)), f"a line was repeated: {lines}"
    await shot(page, "console-offline")
