"""Listening drills in the console, in a real browser (headless chromium driven by Playwright, the in-process
stack with its voice agent): a dictation is started by typing, its sentence arrives as a voice note that plays
(its words hidden behind a transcript), the typed answer comes back with the word marks drawn from WhatsApp
formatting (struck through and bold); a comprehension round is answered from the list of options. Screenshots
go to tests/artifacts/ (the docs' pictures in docs/img/ are these)."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.orchestrator.test_browser import browser, open_console, shot, voice_wav  # noqa: F401 (fixtures)
from tests.support.harness import running_voice_stack

NOTE_MS = 120_000  # the voice agent loads its models first


async def send(page: Page, text: str, replies: int) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await expect(page.locator(".bubble.out:not(.voice)")).to_have_count(replies, timeout=NOTE_MS)


async def played_seconds(page: Page, nth: int) -> float:
    audio = page.locator(".bubble.out audio").nth(nth)
    await expect(audio).to_be_attached(timeout=NOTE_MS)
    seconds: float = await audio.evaluate("""a => new Promise((done, fail) => {
        a.muted = true; a.onended = () => done(a.duration); a.onerror = () => fail(a.error.message);
        a.play().catch(fail); })""")
    return seconds


async def test_dictation_and_comprehension_in_the_console(browser: Browser, db: str,  # noqa: F811
                                                         default_redis_server: str, redis_default: Redis) -> None:
    async with running_voice_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack:
        page = await open_console(browser, stack, "lia")
        await send(page, "dictado", 1)
        instruction = page.locator(".bubble.out:not(.voice)").first
        await expect(instruction.locator("strong")).to_have_text("Dictation")
        await expect(instruction.locator(".choices.buttons button")).to_have_count(2)
        assert 1 < await played_seconds(page, 0) < 10  # the sentence, spoken
        transcript = page.locator(".bubble.out.voice details.transcript")
        await expect(transcript).not_to_have_attribute("open", "")  # its words are not on screen
        await expect(transcript.locator("div")).to_be_hidden()
        await shot(page, "console-dictation-start")

        await send(page, "ayer comi paela con amigos", 2)
        graded = page.locator(".bubble.out:not(.voice)").nth(1)
        await expect(graded.locator("del")).to_have_text(["comi", "paela"])
        await expect(graded.locator("strong")).to_have_text(["Dictation: 71%", "comí", "paella", "mis"])
        await expect(graded).to_contain_text("Missing: mis")
        await shot(page, "console-dictation-graded")

        page = await open_console(browser, stack, "mia")  # comprehension, on a page of its own
        await send(page, "listening", 1)
        assert 3 < await played_seconds(page, 0) < 40  # the passage
        for n, answer in enumerate(("Con Marta", "Cerca del río", "Vieron una película"), 1):
            question = page.locator(".bubble.out:not(.voice)").nth(n - 1)
            await question.locator(".list-open").click()
            await question.locator(".choice.row", has_text=answer).click()
            await expect(page.locator(".bubble.out:not(.voice)")).to_have_count(n + 1)
            await expect(page.locator(".bubble.out:not(.voice)").nth(n)).to_contain_text("Right!")
        done = page.locator(".bubble.out:not(.voice)").nth(3)
        await expect(done.locator("strong").first).to_have_text("Listening: 3/3")
        await expect(done.locator("em")).to_contain_text("El sábado pasado fui al mercado")  # _the passage_
        await shot(page, "console-listening")
