"""Coverage-guided fuzzing of the webhook parsers and the reply chunker with atheris (libFuzzer).

    python -m bench.fuzz [--runs N] [--target meta|twilio|stripe|chunker|all]

Each target runs in its own process, because atheris.Fuzz() exits when it is done: the parsers are imported
under atheris' instrumentation, the corpus starts from the real fixtures (tests/fixtures), and each input
either parses or raises the target's typed error (bench/fuzz_targets.py). Any other exception is a crash:
libFuzzer stops and keeps the input. libFuzzer's progress goes to stderr, one JSON summary to stdout; the exit
status is 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
NAMES = ("meta", "twilio", "stripe", "chunker")
# Only the parsers are instrumented: coverage of pydantic or the stripe library would drown their signal.
INSTRUMENTED = ["charla.channels.meta.webhook", "charla.channels.twilio.webhook", "payments.webhook", "payments.ledger",
                "charla.channels.chunking"]
CRASHES = Path(tempfile.gettempdir()) / "charla-fuzz-crashes"
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)")
# libFuzzer dictionaries: the words each format is built from, so mutations keep inputs near the real shape.
WORDS = {
    "meta": ["!", "sha256=", '"entry"', '"changes"', '"value"', '"messages"', '"statuses"', '"errors"', '"contacts"',
             '"timestamp"', '"from"', '"from_user_id"', '"user_id"', '"wa_id"', '"id"', '"type"', '"text"',
             '"body"', '"context"', '"interactive"', '"button_reply"', '"list_reply"', '"button"', '"payload"',
             '"caption"', '"status"', '"recipient_id"', '"code"', '"title"', "null", "[]", "{}", "9999999999999",
             "\\u0000"],
    "twilio": ["!", "https://example.com/webhooks/twilio/whatsapp", "&", "=", "MessageSid=", "SmsMessageSid=",
               "From=", "To=", "WaId=", "Body=", "NumMedia=", "MediaUrl0=", "MediaContentType0=", "MessageType=",
               "ButtonPayload=", "ButtonText=", "MessageStatus=", "SmsStatus=", "ErrorCode=", "received",
               "undelivered", "audio/ogg", "%C2%B2", "%00"],
    "stripe": ["!", "t=", "v1=", "v0=", ",", '"id"', '"type"', '"created"', '"data"', '"object"', '"customer"',
               '"subscription"', '"parent"', '"subscription_details"', "customer.subscription.", "null", "[]",
               "\\u0000"],
    "chunker": ["*", "_", "~", "```", "\n\n", "\n", ". ", "🇪🇸", "👍🏽", "\u200d", "\u0301"],
}
_METER = "charla-fuzz:"
_COVERAGE = re.compile(r"^#(\d+)\s.*\bcov: (\d+)")  # libFuzzer's progress: inputs run, edges covered
_ERROR = re.compile(r"^\w+(Error|Exception|Failure)\b")


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _signed(vectors: str) -> dict[str, str]:
    """Fixture file -> its genuine signature header (the fixtures' test secrets)."""
    found: dict[str, str] = json.loads(_fixture(vectors))["computed_for_fixture_files"]["files"]
    return found


def _dict_entry(word: str) -> str:
    """`word` as a libFuzzer dictionary line: quoted, anything but printable ASCII as \\xNN."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in word.encode()) + '"'


def seeds(target: str) -> list[bytes]:
    """The starting corpus: the real payloads, each signed by the harness (`!`) and with its genuine header."""
    if target in ("meta", "stripe"):
        signed = _signed("wa_signature_vectors.json" if target == "meta" else "stripe_signature_vectors.json")
        return [header.encode() + b"\n" + _fixture(name) for name, genuine in signed.items()
                for header in ("!", genuine)]
    if target == "twilio":
        form = urlencode({k: str(v) for k, v in json.loads(_fixture("twilio_wa_inbound_text.json")).items()})
        url = "https://example.com/webhooks/twilio/whatsapp"
        return [f"!\n{form}".encode(), *(f"{url} {s}\n{form}".encode()
                                         for s in _signed("twilio_signature_vectors.json").values())]
    text = "Hola 👋 *muy bien*. ¿Y tú? Ser o estar: _es_ ~difícil~.\n\n```code```\n🇪🇸 👩‍👩‍👧 a\u0301 漢字 … "
    return [limit.to_bytes(2, "big") + (text * 4).encode() for limit in (0, 8, 40, 300)]


class _Meter:
    """Counts inputs and, at the last one, reports the rate on stderr (libFuzzer's exec/s is whole seconds,
    and atheris exits without running Python's atexit handlers)."""

    def __init__(self, runs: int) -> None:
        self.runs, self.count, self.started = runs, 0, time.perf_counter()

    def tick(self) -> None:
        self.count += 1
        if self.count == 1:
            self.started = time.perf_counter()
        elif self.count == self.runs:
            rate = (self.count - 1) / max(time.perf_counter() - self.started, 1e-9)
            print(f"{_METER} {json.dumps({'runs': self.count, 'exec_per_s': round(rate)})}", file=sys.stderr,
                  flush=True)


def child(target: str, runs: int, corpus: Path, words: Path) -> None:
    """Fuzz one target in this process until `runs` inputs ran (atheris exits the process at the end)."""
    import atheris  # only the fuzzing process needs it

    with atheris.instrument_imports(include=INSTRUMENTED):
        from bench import fuzz_targets

    one, expected = fuzz_targets.TARGETS[target], fuzz_targets.EXPECTED[target]
    meter = _Meter(runs)

    def test_one(data: bytes) -> None:
        meter.tick()
        with contextlib.suppress(*expected):
            one(data)

    CRASHES.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-timeout=10", "-print_final_stats=1", f"-dict={words}",
                   f"-artifact_prefix={CRASHES}/{target}-", str(corpus)], test_one)
    atheris.Fuzz()


def run_target(target: str, runs: int) -> dict[str, Any]:
    """Fuzz `target` in a child process; its summary, parsed from libFuzzer's output (relayed to stderr)."""
    with tempfile.TemporaryDirectory(prefix=f"charla-fuzz-{target}-") as tmp:
        corpus, words = Path(tmp) / "corpus", Path(tmp) / "words.dict"
        corpus.mkdir()
        for n, seed in enumerate(seeds(target)):
            (corpus / f"seed{n}").write_bytes(seed)
        words.write_text("".join(f"{_dict_entry(word)}\n" for word in WORDS[target]))
        started = time.monotonic()
        command = [sys.executable, "-m", "bench.fuzz", "--child", target, "--runs", str(runs),
                   "--corpus", str(corpus), "--dict", str(words)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace")
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            sys.stderr.write(line)
            lines.append(line)
        code = process.wait()
    return summary(target, lines, code, time.monotonic() - started)


def summary(target: str, lines: list[str], code: int, seconds: float) -> dict[str, Any]:
    """What one target's libFuzzer run says about itself."""
    stats = {m[1]: int(m[2]) for line in lines if (m := _STAT.match(line))}
    progress = next((m for line in reversed(lines) if (m := _COVERAGE.match(line))), None)
    metered: dict[str, int] = next((json.loads(line.removeprefix(_METER)) for line in lines
                                    if line.startswith(_METER)), {})
    runs = stats.get("number_of_executed_units", int(progress[1]) if progress else 0)
    found: dict[str, Any] = {"target": target, "runs": runs, "seconds": round(seconds, 2),
                             # the meter's, else (a crash stopped it) a rough one that includes start-up
                             "exec_per_s": metered.get("exec_per_s") or round(runs / max(seconds, 1e-9)),
                             "coverage": int(progress[2]) if progress else None, "crashes": int(code != 0)}
    if code != 0:
        error = next((line.strip() for line in reversed(lines) if _ERROR.match(line)), None)
        written = next((line.split("written to ")[-1].strip() for line in lines if "written to " in line), None)
        found["crash"] = {"error": error, "input": written, "exit_code": code}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to run per target (default 100000)")
    parser.add_argument("--target", choices=[*NAMES, "all"], default="all", help="what to fuzz (default all)")
    parser.add_argument("--child", choices=NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dict", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.runs, args.corpus, args.dict)
        return 0
    results = [run_target(name, args.runs) for name in (NAMES if args.target == "all" else (args.target,))]
    crashes = sum(r["crashes"] for r in results)
    print(json.dumps({"runs_per_target": args.runs, "crashes": crashes, "targets": results}, indent=2))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
