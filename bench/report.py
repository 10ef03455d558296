"""The reliability report in markdown, from the JSON `bench.reliability` collects."""

from __future__ import annotations

from typing import Any

from bench.soak import DATA_STORES

MARK = {True: "✅ pass", False: "❌ FAIL"}


def _ms(latency: Any, key: str = "p99_ms") -> str:
    value = latency.get(key) if isinstance(latency, dict) else None
    return "–" if value is None else f"{value:,.0f} ms"


def _verdict(part: dict[str, Any]) -> str:
    return MARK[not part.get("violations")]


def render(report: dict[str, Any]) -> str:
    """The whole report: what ran, a summary table, then each part's figures and anything that broke."""
    machine: dict[str, Any] = next((report[p].get("machine", {}) for p in ("chaos", "outage", "soak")
                                    if p in report), {})
    lines = ["# Charla reliability report", "",
             f"Run {report['started_at']} ({'quick smoke run' if report.get('quick') else 'full run'}), "
             f"{report['total_seconds'] / 60:.1f} minutes; {machine.get('cpu_count', '?')} CPUs, load "
             f"{report['loadavg_at_start']} → {report['loadavg_at_end']}; Python {machine.get('python', '?')}, "
             f"Redis {machine.get('redis_server_version', '?')}, "
             f"{str(machine.get('postgresql_version', '?')).split(' on ')[0]}.", "",
             "Reproduce with `make reliability` (about 45 minutes; `python -m bench.reliability --help` for the "
             "parts and a `--quick` smoke run).", "",
             "## Summary", "",
             "| Part | Messages sent | Faults injected | Lost | Duplicated | p99 latencies | Verdict |",
             "|---|---:|---|---:|---:|---|---|"]
    lines += _summary_rows(report)
    broken = [f"- **{part}**: {v}" for part in ("tests", "fuzz", "chaos", "outage", "soak") if part in report
              for v in report[part]["violations"]]
    lines += ["", "Violations: none." if not broken else "Violations:", *broken, ""]
    for part, section in (("chaos", _chaos), ("outage", _outage), ("soak", _soak), ("tests", _tests),
                          ("fuzz", _fuzz)):
        if part in report:
            lines += section(report[part])
    return "\n".join(lines) + "\n"


def _summary_rows(report: dict[str, Any]) -> list[str]:
    rows = []
    if "chaos" in report:
        c = report["chaos"]
        f = c["faults"]
        faults = (f"{sum(f['sigkills'].values())} SIGKILLs ({', '.join(f'{k} ×{v}' for k, v in f['sigkills'].items())})"
                  f", Redis restarted ×{f['redis_restarts']}, PostgreSQL restarted ×{f['postgres_restarts']}")
        rows.append(f"| Chaos: {c['options']['learners']} learners × {c['options']['messages']} text + voice | "
                    f"{c['messages_sent']:,} | {faults} | {c['lost']} | {c['duplicated']} | webhook "
                    f"{_ms(c['webhook']['latency'])}, answer {_ms(c['audit']['answer_latency'])} | {_verdict(c)} |")
    if "outage" in report:
        o = report["outage"]
        worst = max((p["webhook_http"]["latency"]["p99_ms"] or 0 for p in o["phases"].values()), default=None)
        rows.append(f"| Provider outages | {o['messages']:,} | {', '.join(o['phases'])} | {o['unanswered']} | "
                    f"{o['duplicates']} | webhook {_ms({'p99_ms': worst})} (worst phase) | {_verdict(o)} |")
    if "soak" in report:
        s = report["soak"]
        worst = max(((k, v) for k, v in s["rss"].items() if k not in DATA_STORES), key=lambda kv: kv[1]["growth_mb"])
        rows.append(f"| Soak: {s['options']['minutes']:g} min at {s['options']['rate']:g}/s | {s['messages_sent']:,} "
                    f"| none (memory sampled; most growth: {worst[0]} +{worst[1]['growth_mb']} MB) | "
                    f"{s['audit']['text_lines_lost']} | {s['audit']['text_lines_duplicated']} | webhook "
                    f"{_ms(s['webhook_latency'])}, answer {_ms(s['audit']['answer_latency'])} | {_verdict(s)} |")
    if "tests" in report:
        t = report["tests"]
        passed = sum(v["passed"] for v in t["files"].values())
        failed = sum(v["failed"] for v in t["files"].values())
        rows.append(f"| Hostile input, sender faults, injection, privacy (pytest) | – | {passed + failed} tests | – | "
                    f"– | – | {_verdict(t)} |")
    if "fuzz" in report:
        z = report["fuzz"]
        runs = sum(int(t.get("runs", 0)) for t in z.get("targets", []))
        rows.append(f"| Fuzzing (atheris) | {runs:,} inputs | {len(z.get('targets', []))} parsers | – | – | – | "
                    f"{_verdict(z)} |")
    return rows


def _chaos(c: dict[str, Any]) -> list[str]:
    a = c["audit"]
    return ["## Chaos run", "",
            f"{c['accepted']:,} of {c['messages_sent']:,} messages accepted ({c['voice_notes_accepted']} voice notes)"
            f" in {c['seconds_sending']} s; everything answered and settled {c['seconds_to_settle']} s later. "
            f"The webhook was posted {c['webhook']['posts']:,} times; refused while a server restarted: "
            f"{c['webhook']['refused'] or 'never'} (each re-sent until accepted, as Meta does). "
            f"Outages: {c['faults']['outage_s']} s.", "",
            "| Check | Result |", "|---|---|",
            f"| Text lines lost / doubled / learners out of order | {a['text_lines_lost']} / "
            f"{a['text_lines_duplicated']} / {a['learners_out_of_order']} |",
            f"| Replies sent twice | {a['replies_sent_twice']} |",
            f"| Voice notes heard and answered / unheard | {a['voice_lines_echoed']} / {a['voice_notes_unheard']} |",
            f"| Inbound rows by status | {a['inbound_rows']} |",
            f"| Outbound rows by status | {a['outbound_rows']} |",
            f"| Turns / messages they answered | {a['turns']} / {a['messages_in_turns']} |",
            f"| Learners whose error map miscounts a turn | {a['learners_with_inconsistent_error_counts']} |",
            f"| Pending entries (all groups) | {sum(a['pending'].values())} |",
            f"| Dead letters (all streams) | {sum(a['dead_letters'].values())} |",
            f"| Webhook latency | {_latencies(c['webhook']['latency'])} |",
            f"| Accepted → answer latency | {_latencies(a['answer_latency'])} |", ""]


def _latencies(latency: dict[str, Any]) -> str:
    return ", ".join(f"{k.removesuffix('_ms')} {_ms(latency, k)}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))


def _outage(o: dict[str, Any]) -> list[str]:
    lines = ["## Provider outages", "", str(o.get("what", "")), "",
             "| Phase | Groq | Claude | Messages | Webhook p50 / p99 / max | First answer or delay: p99 / max | "
             "Answered or told within 30 s | Delay messages | Answered by |",
             "|---|---|---|---:|---|---|---:|---:|---|"]
    for name, p in o.get("phases", {}).items():
        web, first = p["webhook_http"]["latency"], p["first_reply_or_delay"]
        lines.append(f"| {name} | {p['groq']} | {p['anthropic']} | {p['messages']} | {_ms(web, 'p50_ms')} / "
                     f"{_ms(web)} / {_ms(web, 'max_ms')} | {_ms(first)} / {_ms(first, 'max_ms')} | "
                     f"{p['answered_or_told_within_30s']} | {p['delay_messages']} | {_cell(p['answered_by'])} |")
    back_s = o.get("last_earlier_message_answered_after_back_s")
    lines += ["", f"{o.get('messages')} messages, {o.get('duplicates')} duplicates, {o.get('unanswered')} unanswered; "
              f"the last message from before the recovery was answered {back_s} s after the providers came back "
              "(the circuit breaker's cooldown is 30 s).", ""]
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return "–" if value is None else str(value)


def _soak(s: dict[str, Any]) -> list[str]:
    lines = ["## Soak", "",
             f"{s['messages_sent']:,} messages ({s['voice_notes_accepted']} voice notes) at {s['options']['rate']:g}/s "
             f"over {s['seconds'] / 60:.1f} minutes, every Charla process running. Memory is the proportional set "
             f"size (PSS) of each process and its children, sampled every {s['options']['sample_s']:g} s; the first "
             f"{s['options']['warmup_share']:.0%} of the run is warm-up. Charla's processes are held to the bound; "
             "Redis and PostgreSQL keep data that grows with traffic by design (dedupe keys for 7 days, voice notes "
             f"for 24 hours, message rows): {s.get('data_kb_per_message', {})} KB per message. Redis used "
             f"{s['redis_used_memory_mb']} MB at the end.", "",
             "| Process | After warm-up | End | Growth | Bound | Peak |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {f['after_warmup_mb']} MB | {f['end_mb']} MB | {f['growth_mb']:+} MB | {f['bound_mb']} MB "
              f"| {f['peak_mb']} MB |" for name, f in s["rss"].items()]
    a = s["audit"]
    lines += ["", f"Lost {a['text_lines_lost']}, doubled {a['text_lines_duplicated']}, pending "
              f"{sum(a['pending'].values())}, dead letters {sum(a['dead_letters'].values())}; webhook "
              f"{_latencies(s['webhook_latency'])}; answer {_latencies(a['answer_latency'])}.", ""]
    return lines


def _tests(t: dict[str, Any]) -> list[str]:
    lines = ["## Tests", "", f"pytest exit status {t['exit_status']} in {t['seconds']} s.", "",
             "| File | Passed | Failed | Skipped |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {c['passed']} | {c['failed']} | {c['skipped']} |" for name, c in t["files"].items()]
    return [*lines, ""]


def _fuzz(z: dict[str, Any]) -> list[str]:
    targets = z.get("targets", [])
    if not targets:
        return ["## Fuzzing", "", f"No results (exit {z.get('exit_status')}).", ""]
    keys = [k for k in targets[0] if k != "target"]
    return ["## Fuzzing (atheris, coverage-guided)", "", "| Target | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
            *[f"| {t.get('target')} | " + " | ".join(_cell(t.get(k)) for k in keys) + " |" for t in targets], ""]
