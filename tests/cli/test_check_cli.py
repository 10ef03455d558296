"""`charla check`: the contract outside tests rely on (TEXT, stdin line per line, --json, --lang, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from typer.testing import CliRunner

from charla.cli.root import app

runner = CliRunner()


def test_text_is_checked_and_a_finding_exits_1() -> None:
    result = runner.invoke(app, ["check", "Yo soy cansado porque trabajo mucho."])
    assert result.exit_code == 1
    assert result.stdout == ("~soy cansado~ → estoy cansado (A temporary state such as “cansado” takes estar, "
                             "not ser: “estoy cansado”.)\n")


def test_a_correct_text_exits_0() -> None:
    result = runner.invoke(app, ["check", "--lang", "es", "Estoy cansado."])
    assert (result.exit_code, result.stdout) == (0, "✓\n")


def test_stdin_gives_one_json_line_per_sentence_in_the_correction_shape() -> None:
    result = runner.invoke(app, ["check", "--json"], input="Yo soy cansado.\nMe llamo Ana.\n\nEllos va al cine.\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert lines[1] == lines[2] == []
    assert lines[0] == [{"original": "soy cansado", "corrected": "estoy cansado", "category": "ser_estar",
                         "explanation": "A temporary state such as “cansado” takes estar, not ser: “estoy cansado”."}]
    assert [(c["original"], c["corrected"], c["category"]) for c in lines[3]] == [("va", "van", "verb_conjugation")]
    assert result.exit_code == 1


def test_explanations_in_another_language() -> None:
    result = runner.invoke(app, ["check", "--json", "--explain-in", "es", "Yo soy cansado."])
    assert json.loads(result.stdout)[0]["explanation"].startswith("Un estado pasajero")


def test_an_unknown_language_is_a_usage_error() -> None:
    assert runner.invoke(app, ["check", "--lang", "fr", "Bonjour"]).exit_code == 2


def test_the_installed_command_streams_stdin_fast_offline() -> None:
    sentences = ["Ayer yo voy a la playa con mi amigos.", "Me llamo Ana y soy inglesa."] * 300
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "charla", "check", "--json"], input="\n".join(sentences) + "\n",
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == len(sentences)
    assert len(sentences) / elapsed > 100  # start-up (loading spaCy) included; the benchmark measures the rate
