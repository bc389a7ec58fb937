"""
python -m bench [--quick] [options]       every figure of docs/benchmarks.md
python -m bench report FILE.jsonl         the table and plot of a results file again

Starts every server fresh for each run (bench.servers), measures the scenarios
round by round with the servers alternating (bench.scenarios), then the
publishing rate with wrk (bench.publish_rate); prints a Markdown table of the
medians with the ratios ours ÷ peer and ours ÷ node, writes one JSON line per
run to the results file and draws the plot (bench.report).

The full run (the default) writes bench/results/DATE-COMMIT.jsonl and
docs/benchmarks.svg; --quick (small sizes, one round, a few minutes) writes to
/tmp/bench-quick/ unless --out / --plot say otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import procfs, report
from bench.publish_rate import run_publish
from bench.scenarios import FULL, QUICK, Options, run_scenarios
from bench.servers import REPO, SERVERS, Workspace, log, versions

STEPS = ("a", "b", "d", "n5k", "n10k", "publish")


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "open_files": procfs.raise_nofile(),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round (a few minutes)")
    p.add_argument("--rounds", type=int, help="rounds per scenario (default 3; --quick 1)")
    p.add_argument(
        "--only",
        default=",".join(STEPS),
        help=f"scenarios to run, comma-separated (default all: {','.join(STEPS)})",
    )
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"servers to measure (default all: {','.join(SERVERS)})",
    )
    p.add_argument("--out", type=Path, help="directory of the results file")
    p.add_argument("--plot", type=Path, help="the plot (.svg or .png)")
    p.add_argument(
        "--ours-dir",
        type=Path,
        default=REPO,
        help="where ours' code is imported from, e.g. a `git archive` snapshot "
        "(default: this checkout; the interpreter is always this checkout's .venv)",
    )
    p.add_argument("--client-procs", type=int, default=2, help="client processes (2)")
    p.add_argument("--wrk-seconds", type=float, help="duration of each wrk run (10; --quick 3)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        help="seconds to wait for an idle machine before each run (30; --quick 5)",
    )
    p.add_argument(
        "--retry-noisy",
        type=int,
        help="repeat a run when other processes used > 0.25 cores during it (1; --quick 0)",
    )
    p.add_argument("--logdir", type=Path, default=Path("/tmp/bench-logs"), help="server logs")
    args = p.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.wrk_seconds = args.wrk_seconds or (3.0 if quick else 10.0)
    args.wait_quiet = args.wait_quiet if args.wait_quiet is not None else (5 if quick else 30)
    args.retry_noisy = args.retry_noisy if args.retry_noisy is not None else (0 if quick else 1)
    args.only = [s for s in args.only.split(",") if s]
    args.servers = tuple(s for s in args.servers.split(",") if s)
    for name in args.only:
        if name not in STEPS:
            p.error(f"unknown scenario {name!r}: one of {', '.join(STEPS)}")
    for name in args.servers:
        if name not in SERVERS:
            p.error(f"unknown server {name!r}: one of {', '.join(SERVERS)}")
    return args


def results_path(args: argparse.Namespace) -> Path:
    commit = git("rev-parse", "--short", "HEAD") or "nocommit"
    if args.ours_dir.resolve() == REPO and git(
        "status", "--porcelain", "--", "realtime", "paychain"
    ):
        commit += "-dirty"
    stamp = time.strftime("%Y-%m-%d-%H%M")
    name = f"{stamp}-{commit}{'-quick' if args.quick else ''}.jsonl"
    out = args.out or (Path("/tmp/bench-quick") if args.quick else REPO / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    return out / name


def plot_path(args: argparse.Namespace, results: Path) -> Path:
    if args.plot:
        return args.plot
    return results.parent / "benchmarks.svg" if args.quick else REPO / "docs" / "benchmarks.svg"


def main_run(argv: list[str]) -> None:
    args = parse_args(argv)
    procfs.raise_nofile()
    scenarios = [s for s in (QUICK if args.quick else FULL) if s.key in args.only]
    families = {SERVERS[s].family for s in args.servers}
    ws = Workspace(args.ours_dir.resolve(), args.logdir)
    ws.prepare(families)
    path = results_path(args)
    started = time.time()
    out = open(path, "w")

    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, sort_keys=True) + "\n")
        out.flush()

    emit(
        {
            "kind": "meta",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "argv": ["python", "-m", "bench", *argv],
            "quick": args.quick,
            "rounds": args.rounds,
            "commit": git("rev-parse", "HEAD"),
            "dirty": git("status", "--porcelain", "--", "realtime", "paychain") != "",
            "ours_dir": str(ws.ours_dir),
            "machine": machine(),
            "versions": versions(),
        }
    )
    for s in scenarios:
        emit({"kind": "scenario", **asdict(s), "rounds": s.rounds or args.rounds})
    log(f"results: {path}")
    opts = Options(
        rounds=args.rounds,
        servers=args.servers,
        client_procs=args.client_procs,
        wait_quiet=args.wait_quiet,
        retry_noisy=args.retry_noisy,
    )
    try:
        asyncio.run(run_scenarios(scenarios, ws, opts, emit))
        if "publish" in args.only:
            run_publish(ws, args.rounds, args.servers, args.wrk_seconds, emit)
    finally:
        emit({"kind": "end", "took_s": round(time.time() - started, 1)})
        out.close()
        ws.cleanup()
    finish(path, plot_path(args, path))
    log(f"took {time.time() - started:.0f} s")


def finish(path: Path, plot: Path) -> None:
    records = report.read_results(path)
    summary = report.summarize(records)
    meta = next((r for r in records if r.get("kind") == "meta"), {})
    title = f"{path.name}; commit {str(meta.get('commit', ''))[:7]}" + (
        " (working tree)" if meta.get("dirty") else ""
    )
    print(report.table(summary))
    drawn = report.plot(summary, plot, title=title)
    print(f"\nresults: {path}" + (f"\nplot: {drawn}" if drawn else ""))


def main_report(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench report")
    p.add_argument("results", type=Path)
    p.add_argument("--plot", type=Path, help="default: benchmarks.svg beside the results file")
    args = p.parse_args(argv)
    finish(args.results, args.plot or args.results.with_name("benchmarks.svg"))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        main_report(argv[1:])
    else:
        main_run(argv)


if __name__ == "__main__":
    main()
