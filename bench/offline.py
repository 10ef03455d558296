"""Benchmark F: an offline turn (the demo model is the only one), end to end through the tutor.

Each turn: the checker of the target language (if installed), a follow-up question from the content bank,
and the demo model's one sentence (SmolLM2-135M via llama-cpp-python, within CHARLA_OFFLINE_MODEL_S) checked
by the output guard. Turns run one after another on learner sentences; the model is loaded first (the
conversation agent loads it at start). Target: p50 <= 1 s on 2 cores. Also counted: how often the demo
sentence passed the guard, and any reply with a repeated line (must be 0).
"""

from __future__ import annotations

import time

from bench.load import loadavg, percentiles_ms, progress
from charla.core.catalog import say
from charla.store.profile import Profile
from charla.store.session import Session
from charla.tutor import findings, guard
from charla.tutor.llm import LocalModel, smollm2_path
from charla.tutor.pipeline import Tutor
from charla.tutor.prompt import render
from charla.tutor.router import Router
from tests.support.helpers import make_settings

OPENERS = {say("offline.fine", "en"), say("offline.fix", "en")}  # the reply when no demo sentence was kept
SENTENCES = ("Hola! Me llamo Ana y soy inglesa.", "Ayer yo voy a la playa con mi amigos.",
             "Yo soy cansado porque trabajo mucho.", "Me gusta mucho la comida española.",
             "Mañana voy a visitar a mi abuela.", "¿Qué haces los fines de semana?",
             "Mi hermana es más alta que yo.", "Quiero aprender a cocinar paella.")


async def run(rounds: int = 3, seconds: float = 0.5) -> dict[str, object]:
    progress("offline: turns through the tutor with the demo model only")
    before = loadavg()
    model = LocalModel(smollm2_path())
    model.load()
    settings = make_settings(CHARLA_LOCAL_MODEL="on", CHARLA_OFFLINE_MODEL_S=str(seconds))
    tutor = Tutor(Router({"local": model}, ("local",), ("local",)), settings)
    checker = bool(findings.findings(["Yo soy cansado."], "es")) or _installed("es")
    took, kept, looped = [], 0, 0
    for _ in range(rounds):
        for text in SENTENCES:
            started = time.perf_counter()
            answer = await tutor.answer([text], Session(), Profile(), [])
            took.append(time.perf_counter() - started)
            kept += answer.reply.reply not in OPENERS
            looped += guard.repeated(render(answer.reply, demo=True))
    return {"what": __doc__.split("\n\n")[1] if __doc__ else "", "turns": len(took), "latency": percentiles_ms(took),
            "demo_sentence_s": seconds, "demo_sentence_kept": kept, "replies_with_repeats": looped,
            "checker_installed": checker, "threads": model.threads, "loadavg_before": before,
            "loadavg_after": loadavg()}


def _installed(lang: str) -> bool:
    try:
        findings._checked("Hola.", lang)
    except findings.NoChecker:
        return False
    return True
