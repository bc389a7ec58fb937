"""
What a benchmark invocation leaves: one JSON line per run in a results file
(bench/results/ for the full run), the table it prints (Markdown, so that it can
go into docs/benchmarks.md as it is), and the plot of CPU per delivery and p99
against subscribers (docs/benchmarks.svg).

    python -m bench report bench/results/FILE.jsonl [--plot PATH]

prints the table of a results file again and redraws its plot.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.servers import SERVERS

# Denominators of the ratio columns: ours ÷ each.
RATIOS = [("peer", "÷ peer"), ("peer-nodeflate", "÷ peer, no deflate"), ("node", "÷ node")]
# ours' variants against ours: what Redis, a second process and encryption cost.
VARIANTS = [
    ("ours-memory", "in-memory layer"),
    ("ours-2proc", "2 processes"),
    ("ours-encrypted", "encryption on"),
]


def dig(d: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def median(values: Iterable[Any]) -> float | None:
    vals = [v for v in values if isinstance(v, int | float)]
    return statistics.median(vals) if vals else None


def read_results(path: Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (scenario, server) over the rounds; sums of the counts."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    pubs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    sizes: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("kind") == "run":
            runs.setdefault((r["scenario"], r["server"]), []).append(r)
        elif r.get("kind") == "publish":
            pubs.setdefault((r["body"], r["server"]), []).append(r)
        elif r.get("kind") == "scenario":
            sizes[r["key"]] = r
    out: dict[str, Any] = {"runs": {}, "publish": {}, "scenarios": sizes}
    for (scenario, server), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        agg: dict[str, Any] = {
            "rounds": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
        }
        for key in (
            "server_cpu_us_per_delivery",
            "deliveries_per_s",
            "latency_ms.p50",
            "latency_ms.p90",
            "latency_ms.p99",
            "kb_per_socket",
            "sockets",
            "client_busy_max",
            "machine_cpu_busy",
            "other_cpu_cores",
            "server_cpu_busy",
            "redis_cpu_us_per_delivery",
        ):
            agg[key] = median(dig(r, key) for r in ok)
            agg[key + ".all"] = [dig(r, key) for r in ok]
        for key in ("expected", "delivered", "lost", "duplicated", "out_of_order"):
            agg[key] = sum(r.get(key) or 0 for r in ok)
        agg["extensions"] = sorted({e for r in ok for e in (r.get("extensions") or {})})
        agg["connect_failures"] = sum(sum((r.get("connect_failures") or {}).values()) for r in ok)
        out["runs"][f"{scenario}/{server}"] = agg
    for (body, server), rs in pubs.items():
        ok = [r for r in rs if "error" not in r]
        out["publish"][f"{body}/{server}"] = {
            "rounds": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
            "requests_per_s": median(r["requests_per_s"] for r in ok),
            "publications_per_s": median(r["publications_per_s"] for r in ok),
            "latency_ms.p99": median(dig(r, "latency_ms.p99") for r in ok),
            "server_cpu_us_per_request": median(r.get("server_cpu_us_per_request") for r in ok),
            "non_2xx": sum(r.get("non_2xx") or 0 for r in ok),
            "batch_answer": next((r["batch_answer"] for r in ok if "batch_answer" in r), None),
        }
    return out


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            text = f"{v:,.0f}"
        elif abs(v) >= 100:
            text = f"{v:.0f}"
        elif abs(v) >= 10:
            text = f"{v:.1f}"
        else:
            text = f"{v:.2f}"
    elif isinstance(v, int):
        text = f"{v:,}"
    else:
        text = str(v)
    return text + unit


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return ""
    return f"{a / b:.2f}"


def _label(summary: dict[str, Any], scenario: str, name: str = "") -> str:
    """(a) 1,000 × 100 back to back / (b) 1,000 × 100 at 10/s"""
    s = summary["scenarios"].get(scenario)
    if not s:
        return f"({name or scenario})"
    pace = "back to back" if not s["rate"] else f"at {s['rate']:g}/s"
    return f"({name or scenario}) {s['sockets']:,} × {s['messages']} {pace}"


def rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any], str, str]]:
    """(label, {server: value}, unit, kind); kind "ratio" gets the ratio columns."""
    runs = summary["runs"]
    out: list[tuple[str, dict[str, Any], str, str]] = []

    def metric(scenario: str, key: str, label: str, unit: str = "", kind: str = "ratio") -> None:
        values = {
            server: runs[f"{scenario}/{server}"].get(key)
            for server in SERVERS
            if f"{scenario}/{server}" in runs
        }
        if any(v is not None for v in values.values()):
            out.append((label, values, unit, kind))

    def counts(scenario: str, label: str) -> None:
        values = {}
        for server in SERVERS:
            agg = runs.get(f"{scenario}/{server}")
            if agg:
                values[server] = (
                    f"{agg['lost']} / {agg['duplicated']} / {agg['out_of_order']}"
                    + (f" (of {agg['expected']:,})" if agg["expected"] else "")
                    + (
                        f", {agg['connect_failures']} not connected"
                        if agg["connect_failures"]
                        else ""
                    )
                    + (f", {len(agg['errors'])} failed" if agg["errors"] else "")
                )
        if values:
            out.append((label, values, "", "text"))

    a, b, d = (_label(summary, k) for k in ("a", "b", "d"))
    metric("a", "server_cpu_us_per_delivery", f"{a}: server CPU / delivery", " µs")
    metric("a", "redis_cpu_us_per_delivery", f"{a}: Redis CPU / delivery", " µs", "info")
    metric("a", "deliveries_per_s", f"{a}: deliveries / s")
    metric("a", "latency_ms.p50", f"{a}: latency p50", " ms")
    metric("a", "latency_ms.p99", f"{a}: latency p99", " ms")
    counts("a", f"{a}: lost / dup / out of order")
    metric("b", "latency_ms.p50", f"{b}: latency p50", " ms")
    metric("b", "latency_ms.p90", f"{b}: latency p90", " ms")
    metric("b", "latency_ms.p99", f"{b}: latency p99", " ms")
    metric("b", "server_cpu_us_per_delivery", f"{b}: server CPU / delivery", " µs")
    counts("b", f"{b}: lost / dup / out of order")
    sockets = summary["scenarios"].get("b", {}).get("sockets", 0)
    metric("b", "kb_per_socket", f"(c) {sockets:,} idle sockets: resident KB / socket", " KB")
    counts("d", f"{d}: lost / dup / out of order")
    metric("d", "server_cpu_us_per_delivery", f"{d}: server CPU / delivery", " µs")
    metric("d", "deliveries_per_s", f"{d}: deliveries / s")
    metric("d", "latency_ms.p99", f"{d}: latency p99", " ms")
    metric("d", "kb_per_socket", f"{d}: resident KB / idle socket", " KB")
    for key in ("n5k", "n10k"):
        c = _label(summary, key, "curve")
        metric(key, "server_cpu_us_per_delivery", f"{c}: server CPU / delivery", " µs")
        metric(key, "latency_ms.p99", f"{c}: latency p99", " ms")
        metric(key, "kb_per_socket", f"{c}: resident KB / idle socket", " KB")
        counts(key, f"{c}: lost / dup / out of order")
    pubs = summary["publish"]
    for body, key, label in (
        ("single", "requests_per_s", "publish (wrk 2×16): requests / s"),
        ("single", "latency_ms.p99", "publish: latency p99"),
        ("single", "server_cpu_us_per_request", "publish: server CPU / request"),
        ("batch", "publications_per_s", "publish, lists of 100: publications / s"),
    ):
        unit = {"latency_ms.p99": " ms", "server_cpu_us_per_request": " µs"}.get(key, "")
        values = {s: pubs[f"{body}/{s}"][key] for s in SERVERS if f"{body}/{s}" in pubs}
        if body == "batch":
            for s in SERVERS:
                single = pubs.get(f"single/{s}")
                if single and f"batch/{s}" not in pubs:
                    values[s] = "not accepted" if single.get("batch_answer") else None
        if values:
            out.append((label, values, unit, "ratio"))
    # Whether the client or the machine, not the server, set the pace.
    for scenario in ("a", "b", "d", "n5k", "n10k"):
        metric(
            scenario, "client_busy_max", f"({scenario}) busiest client process", " cores", "info"
        )
        metric(scenario, "other_cpu_cores", f"({scenario}) other processes' CPU", " cores", "info")
    return out


def table(summary: dict[str, Any]) -> str:
    present = {s for key in summary["runs"] for s in [key.split("/", 1)[1]]}
    present |= {key.split("/", 1)[1] for key in summary["publish"]}
    servers = [s for s in SERVERS if s in present]
    ratio_cols = [(s, title) for s, title in RATIOS if s in present and "ours" in present]
    header = ["", *(SERVERS[s].title for s in servers), *(f"ours {t}" for _, t in ratio_cols)]
    body = []
    for label, values, unit, kind in rows(summary):
        cells = [label]
        for s in servers:
            v = values.get(s)
            cells.append(v if isinstance(v, str) else fmt(v, unit if v is not None else ""))
        for s, _ in ratio_cols:
            cells.append(ratio(values.get("ours"), values.get(s)) if kind == "ratio" else "")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    text = [line(header), rule, *(line(r) for r in body)]
    text += variant_notes(summary)
    return "\n".join(text)


def variant_notes(summary: dict[str, Any]) -> list[str]:
    """ours' variants divided by ours (Redis, one process): their cost."""
    runs = summary["runs"]
    notes = []
    for variant, title in VARIANTS:
        parts = []
        for scenario in ("a", "b", "d"):
            mine, base = runs.get(f"{scenario}/{variant}"), runs.get(f"{scenario}/ours")
            if not mine or not base:
                continue
            cpu = ratio(mine["server_cpu_us_per_delivery"], base["server_cpu_us_per_delivery"])
            p99 = ratio(mine["latency_ms.p99"], base["latency_ms.p99"])
            if cpu:
                parts.append(f"({scenario}) CPU/delivery {cpu}, p99 {p99}")
        if parts:
            notes.append(f"ours, {title} ÷ ours (Redis, 1 process): " + "; ".join(parts))
    flags = [
        ("machine_cpu_busy", 0.9, "the machine ≥ 90 % busy (client and server share 2 cores)"),
        ("client_busy_max", 0.85, "a client process ≥ 85 % busy (the client may set the pace)"),
        ("other_cpu_cores", 0.25, "other processes > 0.25 cores meanwhile (noisy)"),
    ]
    for key, limit, text in flags:
        hits: dict[str, list[str]] = {}
        for name, agg in runs.items():
            scenario, server = name.split("/", 1)
            if (agg.get(key) or 0) > limit:
                hits.setdefault(scenario, []).append(server)
        if hits:
            where = "; ".join(f"({sc}) {', '.join(servers)}" for sc, servers in hits.items())
            notes.append(f"! {text}: {where}")
    for name, agg in runs.items():
        if agg["errors"]:
            notes.append(f"! {name}: {len(agg['errors'])} run(s) failed: {agg['errors'][0]}")
    extensions = {s: agg["extensions"] for key, agg in runs.items() for s in [key.split("/", 1)[1]]}
    if extensions:
        notes.append(
            "negotiated extensions: "
            + ", ".join(f"{s} {'+'.join(e) or 'none'}" for s, e in extensions.items())
        )
    return ["", *notes] if notes else []


# --------------------------------------------------------------------------------------
# The plot
# --------------------------------------------------------------------------------------


def curve_points(summary: dict[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """server -> [(subscribers, CPU µs per delivery, p99 ms)] over the curve's scenarios."""
    keys = [k for k, s in summary["scenarios"].items() if s.get("curve")]
    lines: dict[str, list[tuple[int, float, float]]] = {}
    for server in SERVERS:
        pts = []
        for key in keys:
            agg = summary["runs"].get(f"{key}/{server}")
            if agg and agg["server_cpu_us_per_delivery"] is not None:
                pts.append(
                    (
                        summary["scenarios"][key]["sockets"],
                        agg["server_cpu_us_per_delivery"],
                        agg["latency_ms.p99"],
                    )
                )
        if len(pts) >= 2:
            lines[server] = sorted(pts)
    return lines


def plot(summary: dict[str, Any], path: Path, title: str = "") -> Path | None:
    lines = curve_points(summary)
    if not lines:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "paychain-bench"  # stable ids: diffs show real changes
    fig, (cpu_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server, pts in lines.items():
        x = [p[0] for p in pts]
        style = "-" if server.startswith("ours") else "--"
        cpu_ax.plot(x, [p[1] for p in pts], style, marker="o", label=SERVERS[server].title)
        p99_ax.plot(x, [p[2] for p in pts], style, marker="o", label=SERVERS[server].title)
    cpu_ax.set(
        title="Server CPU per delivered message",
        xlabel="subscribers (10 broadcasts/s)",
        ylabel="µs",
    )
    p99_ax.set(
        title="Latency p99, publish to receive", xlabel="subscribers (10 broadcasts/s)", ylabel="ms"
    )
    p99_ax.set_yscale("log")
    p99_ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    p99_ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    p99_ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax in (cpu_ax, p99_ax):
        ax.set_xticks(sorted({p[0] for pts in lines.values() for p in pts}))
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0 if ax is cpu_ax else None)
    cpu_ax.legend(fontsize=8)
    p99_ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return path
