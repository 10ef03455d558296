"""`python -m bench.reliability` (`make reliability`): the reliability and security suite, with a report.

It runs, in order: the hostile-input, sender-fault, injection, privacy and outage tests (pytest); coverage-
guided fuzzing of the webhook parsers and the chunker (atheris); the full chaos run; the provider-outage
timeline; the soak. Each scenario gets fresh PostgreSQL and Redis servers. The figures go to
bench/results/reliability.json and a markdown report to bench/results/reliability.md; the exit status is 1 if
anything failed or any promise was broken (lost or doubled messages, pending entries, dead letters, memory
growth, slow webhooks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import chaos, outage, soak
from bench.load import loadavg, progress
from bench.report import render
from bench.services import Services, machine_info, prepare, started_services

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
SUITES = ("tests/orchestrator/test_hostile.py", "tests/agents/test_sender_faults.py", "tests/tutor/test_injection.py",
          "tests/core/test_logs.py", "tests/system/test_outage.py", "tests/system/test_chaos.py")
SCENARIOS = ("tests", "fuzz", "chaos", "outage", "soak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: a small chaos run, the compressed outage timeline, a 2-minute soak, "
                             "2,000 fuzzing runs per target")
    parser.add_argument("--only", action="append", choices=SCENARIOS,
                        help="run only these parts (repeatable; default: all); the other parts' results are kept "
                             "from the last reliability.json in the report")
    parser.add_argument("--soak-minutes", type=float, help="soak duration (default 30, quick 2)")
    parser.add_argument("--fuzz-runs", type=int, help="atheris runs per target (default 100000, quick 2000)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS,
                        help="where reliability.json and reliability.md go (default bench/results)")
    return parser.parse_args(argv)


def run_tests(paths: tuple[str, ...], output_dir: Path) -> dict[str, Any]:
    """The pytest suites, counted from their JUnit XML per file."""
    junit = output_dir / "reliability-junit.xml"
    progress(f"tests: {' '.join(paths)}")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                           *paths], cwd=ROOT, check=False)
    per_file: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 (our own pytest's report)
        name = case.get("classname", "?").rsplit(".", 1)[-1] + ".py"
        counts = per_file.setdefault(name, {"passed": 0, "failed": 0, "skipped": 0})
        outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        counts[outcome] += 1
        if outcome == "failed":
            failures.append(f"{name}::{case.get('name')}")
    junit.unlink(missing_ok=True)
    return {"exit_status": done.returncode, "seconds": round(time.perf_counter() - started, 1), "files": per_file,
            "violations": [f"test failed: {name}" for name in failures] or
                          ([f"pytest exited with {done.returncode}"] if done.returncode else [])}


def run_fuzz(runs: int) -> dict[str, Any]:
    """`python -m bench.fuzz --target all --runs N`: its JSON, plus violations for any crash."""
    progress(f"fuzz: atheris, {runs} runs per target")
    done = subprocess.run([sys.executable, "-m", "bench.fuzz", "--target", "all", "--runs", str(runs)], cwd=ROOT,
                          check=False, capture_output=True, text=True)
    sys.stderr.write(done.stderr[-4000:])
    try:
        found: Any = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"exit_status": done.returncode, "violations": [f"the fuzzer printed no JSON (exit {done.returncode})"]}
    targets = found if isinstance(found, list) else found.get("targets", [found])
    crashed = [f"fuzzing {t.get('target')} crashed: {t.get('crash') or t.get('crashes')}"
               for t in targets if t.get("crashes")]
    if done.returncode and not crashed:
        crashed.append(f"the fuzzer exited with {done.returncode}")
    return {"exit_status": done.returncode, "targets": targets, "violations": crashed}


Scenario = Callable[[Services], Awaitable[dict[str, Any]]]


async def with_services(scenario: Scenario) -> dict[str, Any]:
    """Run `scenario` on fresh servers (and describe the machine it ran on)."""
    with started_services() as services:
        await prepare(services)
        return {**await scenario(services), "machine": await machine_info(services)}


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    """The load scenarios to run, full size unless --quick."""
    chaos_options = chaos.ChaosOptions(learners=8, messages=15, kills=1, pause_s=0.4) if args.quick \
        else chaos.ChaosOptions()
    soak_options = soak.SoakOptions(minutes=args.soak_minutes or (2.0 if args.quick else 30.0),
                                    sample_s=10.0 if args.quick else 15.0)
    outage_options = outage.QUICK if args.quick else outage.OutageOptions()
    return {"chaos": lambda s: chaos.run(s, chaos_options), "outage": lambda s: outage.run(s, outage_options),
            "soak": lambda s: soak.run(s, soak_options)}


def main(argv: list[str] | None = None) -> None:
    """Run the selected parts, write the JSON and the markdown report, exit 1 on any violation."""
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    wanted = args.only or list(SCENARIOS)
    report: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
                              "loadavg_at_start": loadavg()}
    previous = args.output_dir / "reliability.json"
    if args.only and previous.exists():  # re-running some parts: keep the others' latest results
        kept = json.loads(previous.read_text())
        report |= {part: kept[part] for part in SCENARIOS if part in kept and part not in wanted}
    started = time.perf_counter()
    if "tests" in wanted:
        report["tests"] = run_tests(SUITES, args.output_dir)
    if "fuzz" in wanted:
        report["fuzz"] = run_fuzz(args.fuzz_runs or (2000 if args.quick else 100_000))
    for name, scenario in scenarios(args).items():
        if name in wanted:
            progress(f"{name}: starting")
            report[name] = uvloop.run(with_services(scenario))
            progress(f"{name}: {len(report[name]['violations'])} violation(s)")
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["loadavg_at_end"] = loadavg()
    (args.output_dir / "reliability.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.output_dir / "reliability.md").write_text(render(report))
    broken = [v for part in SCENARIOS if part in report for v in report[part]["violations"]]
    progress(f"wrote {args.output_dir / 'reliability.md'}: {len(broken)} violation(s)")
    for violation in broken:
        progress(f"  ✗ {violation}")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
