"""`python -m bench`: run the benchmarks, print one JSON document, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from bench import (
    bus,
    bus_partitions,
    checker,
    cluster_app,
    ingest,
    memory,
    offline,
    outage,
    payments,
    scheduler,
    turn,
    voice,
    webhook,
    weekly,
)
from bench.load import progress
from bench.services import Services, machine_info, prepare, started_services

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts, a 3 s webhook load, 1 s ingest rates (a smoke run)")
    parser.add_argument("--only", choices=["bus", "webhook", "ingest", "turn", "memory", "payments", "scheduler",
                                           "voice", "outage", "checker", "offline", "report", "cluster"],
                        help="run one benchmark only")
    parser.add_argument("--events", type=int, help="bus events per measurement (default 10000, quick 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered webhooks per second (default 200)")
    parser.add_argument("--seconds", type=float, help="webhook load duration (default 10, quick 3)")
    parser.add_argument("--ingest-rates", type=rates, help="ingest offered rates per second (default 200,500,1000)")
    parser.add_argument("--ingest-seconds", type=float, help="ingest seconds per offered rate (default 2, quick 1)")
    parser.add_argument("--turn-rates", type=rates, help="turn benchmark offered rates per second (default 20,100)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="where to write the JSON")
    return parser.parse_args(argv)


def rates(text: str) -> tuple[float, ...]:
    """Comma-separated positive rates."""
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("expected positive numbers separated by commas")
    return values


def bus_options(args: argparse.Namespace) -> bus.BusOptions:
    return bus.BusOptions(events=args.events or (2000 if args.quick else 10_000))


def webhook_options(args: argparse.Namespace) -> webhook.WebhookOptions:
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    return webhook.WebhookOptions(rate=args.rate, seconds=seconds, warmup=20 if args.quick else 50,
                                  closed_loop_s=0.5 if args.quick else 0.75)


def ingest_options(args: argparse.Namespace) -> ingest.IngestOptions:
    defaults = ingest.IngestOptions()
    seconds = args.ingest_seconds or (1.0 if args.quick else defaults.seconds)
    if args.quick:
        return ingest.IngestOptions(rates=args.ingest_rates or defaults.rates, seconds=seconds, closed_loop_s=0.4,
                                    rounds=1, warmup_s=0.3)
    return ingest.IngestOptions(rates=args.ingest_rates or defaults.rates, seconds=seconds)


def turn_options(args: argparse.Namespace) -> turn.TurnOptions:
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    return turn.TurnOptions(rates=args.turn_rates or turn.TurnOptions.rates, seconds=seconds)


async def run_all(services: Services, args: argparse.Namespace) -> dict[str, object]:
    """Migrate, describe the machine, then run the selected benchmarks."""
    await prepare(services)
    result: dict[str, object] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "quick": args.quick, "machine": await machine_info(services)}
    if args.only in (None, "bus"):
        result["bus"] = await bus.run(services.redis_url, bus_options(args))
        pid = services.redis_server.pid if services.redis_server else None
        result["bus_partitions"] = await bus_partitions.run(services.redis_url, pid, bus_options(args))
    if args.only in (None, "webhook"):
        result["webhook"] = await webhook.run(services, webhook_options(args))
    if args.only in (None, "ingest"):
        result["ingest"] = await ingest.run(services, ingest_options(args))
    if args.only in (None, "turn"):
        result["turn"] = await turn.run(services, turn_options(args))
    if args.only in (None, "memory"):
        quick = memory.MemoryOptions(per_learner=200, queries=200, updates=500, seconds=4.0)
        result["memory"] = await memory.run(services, quick if args.quick else memory.MemoryOptions())
    if args.only in (None, "payments"):
        result["payments"] = await payments.run(services, 500 if args.quick else 2000)
    if args.only in (None, "scheduler"):
        result["scheduler"] = await scheduler.run(services, 10_000 if args.quick else 100_000)
    if args.only in (None, "report"):
        result["report"] = await weekly.run(services, 1000 if args.quick else 10_000)
    if args.only in (None, "voice"):
        result["voice"] = await voice.run(services, args.quick)
    if args.only is None:
        result["checker"] = checker.run()
    if args.only in (None, "cluster"):
        result["cluster_app"] = await cluster_app.run(50 if args.quick else 200)
    if args.only in (None, "outage"):
        result["outage"] = await outage.run(services, outage.QUICK if args.quick else outage.OutageOptions())
    if args.only in (None, "offline"):
        result["offline"] = await offline.run(rounds=1 if args.quick else 3)
    return result


def main(argv: list[str] | None = None) -> None:
    """Run, print the JSON document on stdout and save it."""
    args = parse_args(argv)
    started = time.perf_counter()
    if args.only == "checker":  # offline by contract: no services
        result: dict[str, object] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                     "checker": checker.run()}
    else:
        with started_services() as services:
            result = uvloop.run(run_all(services, args))
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    document = json.dumps(result, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document + "\n")
    progress(f"wrote {args.output}")
    print(document)


if __name__ == "__main__":
    main()
