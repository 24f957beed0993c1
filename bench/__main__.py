"""`python -m bench [NAME ...]`: run every benchmark, or the named ones, and print the figures."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import asdict
from types import ModuleType

from bench._harness import BenchError, Figure, machine, say

# In the order; each module has NAME and run() -> Report.
BENCHMARKS = (
    "overhead",
    "nonblocking",
    "deadlines",
    "throughput",
    "health",
    "memory",
    "alerts",
    "scheduled",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit 1 when one failed to run (not when a target is missed)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    selected = [n for n in BENCHMARKS if n in args.names] if args.names else list(BENCHMARKS)

    host = machine()
    say("machine: " + ", ".join(f"{k} {v}" for k, v in host.items()))
    figures: list[Figure] = []
    failed: list[str] = []
    durations: dict[str, float] = {}
    for name in selected:
        say(f"\n== {name} ==")
        started = time.monotonic()
        try:
            report = _module(name).run()
        except BenchError as exc:
            say(f"  FAILED TO RUN: {exc}")
            failed.append(name)
            continue
        finally:
            durations[name] = time.monotonic() - started
        figures.extend(report.figures)
        say(f"  ({durations[name]:.0f} s)")

    total = sum(durations.values())
    say(f"\nall done in {total:.0f} s; load average now {machine()['loadavg']}")
    say("\n== targets ==")
    for figure in figures:
        if figure.target is not None:
            say(f"  {figure.bench}: {figure.text()}")
    for name in failed:
        say(f"  {name}: did not run")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "machine": host,
                    "finished_machine_load": machine()["loadavg"],
                    "durations_s": durations,
                    "figures": [asdict(f) for f in figures],
                    "failed": failed,
                },
                out,
                indent=2,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
