"""Every benchmark in one process tree: ``python bench/run.py [--quick]``.

Prints one table (figures, targets, ratios against the floor measured in the
same run), writes ``bench/results/results.json`` and ``bench/results/chart.png``.
Sizes are fixed (``--quick`` uses smaller ones); the servers are
deterministic; only the machine's timing varies. Sections:

* throughput: a pre-recorded 100,000-update body from loopback (``throughput.py``);
* the hosted dialect (``hosted.py``): NDJSON throughput against the naive floor
  and the official SDK's reader recipe, the cost of a hosted update against a
  PROTOCOL.md one, ``delta`` events into ``partial_output`` (tokens/s, and the
  curve of a 1 MB answer), 1,000 idle hosted streams on one client, and the
  import time against the official SDK's;
* delivery latency: one update every 10 ms, received − sent (``latency.py``),
  PROTOCOL.md SSE and the hosted NDJSON and SSE paths;
* RSS growth over 1,000,000 updates (``memory.py``, in child processes);
* deadline overshoot and cancel latency on a stalled stream (``abort.py``);
* 200 parallel streams on one client (``parallel.py``);
* LocalServer: 1,000 concurrent streams held, and events/s (``bench_server.py``);
* the browser relay's added latency (``bench_relay.py``), when present;
* where the SDK's time goes (``profile_sdk.py``, cProfile).

Benchmarks are not tests: a missed target is reported (``MISS``), not failed.
The exit status is non-zero only when a benchmark itself broke.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":  # run as a script: import as the package
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import abort, hosted, latency, memory, parallel, profile_sdk, throughput  # noqa: E402

RESULTS = ROOT / "bench" / "results"

FULL = {
    "throughput_events": 100_000,
    "throughput_repeat": 5,
    "latency_updates": 500,
    "memory_updates": 1_000_000,
    "abort_trials": 50,
    "parallel_streams": 200,
    "server_streams": 1000,
    "server_count": 200_000,
    "relay_events": 300,
    "hosted_events": 50_000,
    "hosted_repeat": 3,
    "delta_tokens": 4096,
    "delta_big": 1024 * 1024,
    "idle_streams": 1000,
    "idle_window": 60,
    "import_runs": 9,
}
QUICK = {
    "throughput_events": 20_000,
    "throughput_repeat": 3,
    "latency_updates": 150,
    "memory_updates": 200_000,
    "abort_trials": 10,
    "parallel_streams": 200,
    "server_streams": 300,
    "server_count": 50_000,
    "relay_events": 100,
    "hosted_events": 10_000,
    "hosted_repeat": 3,
    "delta_tokens": 4096,
    "delta_big": 256 * 1024,
    "idle_streams": 200,
    "idle_window": 10,
    "import_runs": 5,
}

READER_NAMES = {
    "floor": "floor: raw socket + split(b'\\n\\n') + json.loads",
    "sdk": "SDK TaskStream (client.tasks.stream)",
    "sseclient": "requests + sseclient-py + json.loads (its README)",
    "httpx_sse": "httpx + httpx-sse + json.loads",
}


def _log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- sections run as child processes of others' scripts ------------------------------


def run_bench_server(streams: int, count: int) -> dict[str, Any]:
    """``bench/bench_server.py`` (LocalServer: many idle streams, events/s), its printed figures parsed."""
    script = ROOT / "bench" / "bench_server.py"
    if not script.exists():
        raise FileNotFoundError(script)
    out = subprocess.run(
        [sys.executable, str(script), "--streams", str(streams), "--count", str(count)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    text = out.stdout

    def number(pattern: str) -> Optional[float]:
        found = re.search(pattern, text)
        return float(found.group(1).replace(",", "")) if found else None

    return {
        "script": "bench/bench_server.py",
        "ok": out.returncode == 0 and "OK" in text.splitlines()[-1:],
        "streams_asked": streams,
        "open_time_s": number(r"streams opened in ([\d.]+) s"),
        "server_open_streams": number(r"server reports (\d+) open streams"),
        "streams_with_heartbeats": number(r"(\d+)/\d+ streams got heartbeats"),
        "server_rss_mb": number(r"server RSS with \d+ streams: ([\d.]+) MB"),
        "kb_per_stream": number(r"\+([\d.]+) kB per stream"),
        "connections_left": number(r"connections left open after the clients closed: (\d+)"),
        "events_per_s": number(r"= ([\d,]+) events/s"),
        "output": text,
    }


def run_bench_relay(events: int) -> dict[str, Any]:
    """``bench/bench_relay.py`` (the browser relay's added latency per event), its table parsed."""
    script = ROOT / "bench" / "bench_relay.py"
    if not script.exists():
        raise FileNotFoundError(script)
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_relay", "--events", str(events)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    rows = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 6 and all(re.fullmatch(r"-?[\d.]+", p) for p in parts):
            browsers, count, p50, p90, p99, worst = parts
            rows.append(
                {
                    "browsers": int(browsers),
                    "events": int(count),
                    "p50_ms": float(p50),
                    "p90_ms": float(p90),
                    "p99_ms": float(p99),
                    "max_ms": float(worst),
                }
            )
    return {
        "script": "bench/bench_relay.py",
        "ok": out.returncode == 0 and bool(rows),
        "rows": rows,
        "output": out.stdout,
    }


# -- the table ----------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.verdicts: list[dict[str, Any]] = []

    def section(self, title: str) -> None:
        self.rows.append((title, "", "", ""))

    def row(self, name: str, value: str, target: str = "", verdict: str = "") -> None:
        self.rows.append(("  " + name, value, target, verdict))

    def check(self, name: str, value: str, target: str, ok: bool) -> None:
        verdict = "ok" if ok else "MISS"
        self.row(name, value, target, verdict)
        self.verdicts.append({"check": name.strip(), "value": value, "target": target, "met": ok})

    def render(self) -> str:
        body = [r for r in self.rows if r[1] or r[2] or r[3]] or [("", "", "", "")]
        widths = [max(len(r[i]) for r in body) for i in range(4)]
        head = ("benchmark", "figure", "target", "")
        widths = [max(w, len(h)) for w, h in zip(widths, head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            if not row[1] and not row[2] and not row[3]:
                lines.append(row[0])
            else:
                lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return "\n".join(lines)


def _rate(value: float) -> str:
    return f"{value:,.0f} upd/s"


def build_table(results: dict[str, Any]) -> Table:
    table = Table()
    tp = results.get("throughput")
    if tp:
        rates, to_floor = tp["updates_per_s"], tp["ratio_to_floor"]
        for framing, suffix in (("close-delimited", ""), ("chunked, one HTTP chunk per event", "_chunked")):
            table.section(f"throughput, {tp['events']:,} pre-recorded updates, {framing} (median of {tp['repeat']})")
            if not suffix:
                table.row(READER_NAMES["floor"], _rate(rates["floor"]), "", "1.00x floor")
            for reader in ("sseclient", "httpx_sse"):
                key = reader + suffix
                table.row(READER_NAMES[reader], _rate(rates[key]), "", f"{to_floor[key]:.2f}x floor")
            key = "sdk" + suffix
            sdk = rates[key]
            table.row(READER_NAMES["sdk"], _rate(sdk), "", f"{to_floor[key]:.2f}x floor")
            to_sseclient = sdk / rates["sseclient" + suffix]
            table.check("SDK vs sseclient-py", f"{to_sseclient:.2f}x", ">= 1.3x (L)", to_sseclient >= 1.3)
            table.check("SDK vs floor", f"{to_floor[key]:.2f}x", ">= 0.5x (B)", to_floor[key] >= 0.5)
            table.check("SDK vs floor", f"{to_floor[key]:.2f}x", ">= 0.8x (G)", to_floor[key] >= 0.8)
            to_httpx = sdk / rates["httpx_sse" + suffix]
            if suffix:
                table.check("SDK vs httpx-sse", f"{to_httpx:.2f}x", ">= 1.0x (L)", to_httpx >= 1.0)
            else:
                table.check("SDK vs httpx-sse", f"{to_httpx:.2f}x", "ahead (G)", to_httpx > 1.0)
    build_hosted_rows(table, results)
    lt = results.get("latency")
    if lt:
        table.section(
            f"delivery latency, 1 update / {lt['interval_s'] * 1000:.0f} ms, {lt['updates']} updates, p50 / p99"
        )
        for reader in ("floor", "sdk", "sseclient", "httpx_sse"):
            r = lt["readers"][reader]
            table.row(
                READER_NAMES[reader], f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms", "", f"max {r['max_ms']:.2f} ms"
            )
        sdk = lt["readers"]["sdk"]
        table.check("SDK p99", f"{sdk['p99_ms']:.2f} ms", "<= 2 ms (B)", sdk["p99_ms"] <= 2.0)
        added = lt["sdk_p99_added_ms"]
        table.check("SDK p99 added over the floor", f"{added:+.2f} ms", "<= 1 ms (G, L)", added <= 1.0)
        for fmt, path in (lt.get("hosted") or {}).get("paths", {}).items():
            label = "NDJSON" if fmt == "ndjson" else "SSE"
            for reader in ("floor", "sdk"):
                r = path[reader]
                name = f"hosted {label}: " + ("floor" if reader == "floor" else "SDK (dialect='hosted')")
                table.row(name, f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms", "", f"max {r['max_ms']:.2f} ms")
            added = path["sdk_p99_added_ms"]
            table.check(f"hosted {label}: SDK p99 added", f"{added:+.2f} ms", "<= 1 ms (L)", added <= 1.0)
    mem = results.get("memory")
    if mem:
        for key, label in (("no_logs", "updates without log lines"), ("with_logs", "one log line per update")):
            m = mem[key]
            table.section(f"RSS growth over {m['updates']:,} updates, {label}")
            growth_mb = m["rss_growth_bytes"] / 1e6
            table.row(
                "baseline after 10,000 / end / peak",
                f"{m['rss_baseline_bytes'] / 1e6:.1f} / {m['rss_end_bytes'] / 1e6:.1f} / "
                f"{m['rss_peak_bytes'] / 1e6:.1f} MB",
                "",
                f"{m['updates'] / m['seconds']:,.0f} upd/s",
            )
            if key == "no_logs":
                table.check("growth", f"{growth_mb:+.1f} MB", "<= 5 MB (B, G)", growth_mb <= 5.0)
            else:
                per_line = m["rss_growth_bytes"] / max(1, m["log_lines_kept"])
                table.row(
                    "growth (TaskStream.logs keeps every line, by API.md)",
                    f"{growth_mb:+.1f} MB",
                    "",
                    f"{per_line:.0f} B per kept line",
                )
    ab = results.get("abort")
    if ab:
        table.section(f"abort on a stalled stream, {ab['trials']} trials each, p50 / p99")
        d, c = ab["deadline_overshoot"], ab["cancel_latency"]
        table.check(
            f"deadline overshoot (timeout={ab['deadline_s']:g} s)",
            f"{d['p50_ms']:.2f} / {d['p99_ms']:.2f} ms",
            "p99 <= 50 ms (C)",
            d["p99_ms"] <= 50,
        )
        table.check(
            "cancel() -> Cancelled in the loop",
            f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} ms",
            "p99 <= 50 ms (C)",
            c["p99_ms"] <= 50,
        )
    par = results.get("parallel")
    if par:
        for key, label in (("sleep", "infsh/sleep 2 s each"), ("count", "infsh/count 500 each")):
            p = par[key]
            table.section(f"{p['streams']} parallel streams on one client ({p['api']}), {label}")
            table.row(
                "wall / client CPU",
                f"{p['wall_s']:.2f} s / {p['client_cpu_s']:.2f} s",
                "",
                f"{p['updates']:,} updates, {p['updates_per_s']:,.0f} upd/s",
            )
            table.row(
                "peak threads / left after",
                f"{p['peak_threads']} / {p['threads_left']}",
                "",
                f"peak open on the server {p['peak_server_open_streams']}",
            )
    sv = results.get("server")
    if sv:
        table.section("LocalServer (bench/bench_server.py)")
        held = sv.get("server_open_streams") or 0
        asked = sv["streams_asked"]
        table.check(
            "concurrent open streams held",
            f"{held:.0f} of {asked}",
            ">= 1,000 (G)" if asked >= 1000 else f"all {asked} (quick)",
            held >= min(asked, 1000) and bool(sv.get("ok")),
        )
        table.row(
            "server RSS with them",
            f"{sv.get('server_rss_mb') or 0:.1f} MB",
            "",
            f"{sv.get('kb_per_stream') or 0:.1f} kB per stream",
        )
        table.row("events/s to one client (infsh/count)", f"{sv.get('events_per_s') or 0:,.0f} ev/s")
    rl = results.get("relay")
    if rl and rl.get("rows"):
        table.section("browser relay added latency (bench/bench_relay.py), p50 / p99")
        for r in rl["rows"]:
            table.row(f"{r['browsers']} browser(s), {r['events']} events", f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms")
    pr = results.get("profile")
    if pr:
        stages = pr.get("stages")
        if stages:
            table.section("the update path built up in memory, no socket (us per update, cumulative)")
            for name, micros in stages.items():
                table.row(name, f"{micros:.2f} us")
            if tp:
                table.row("the whole SDK over loopback (1 / throughput)", f"{1e6 / tp['updates_per_s']['sdk']:.2f} us")
        for framing in ("close", "chunked"):
            prof = pr.get(framing)
            if not prof:
                continue
            table.section(f"where the SDK's time goes, {framing} framing (cProfile own time, shares)")
            for component, share in list(prof["shares"].items())[:6]:
                table.row(component, f"{share * 100:.0f} %")
    return table


def build_hosted_rows(table: Table, results: dict[str, Any]) -> None:
    """The hosted dialect's rows (``hosted.py``): NDJSON throughput, update cost, deltas, idle streams, imports."""
    ht = results.get("hosted")
    if ht:
        rates = ht["objects_per_s"]
        for framing, label in (("close", "close-delimited"), ("chunked", "chunked, one HTTP chunk per object")):
            table.section(
                f"hosted NDJSON, the TaskDTO + {ht['events']:,} partial updates with log lines, {label} "
                f"(median of {ht['repeat']})"
            )
            floor = rates[f"floor_{framing}"]
            table.row("floor: raw socket + split(b'\\n') + json.loads", f"{floor:,.0f} obj/s", "", "1.00x floor")
            for name, text in (
                ("official", "official 0.36 recipe: iter_lines(8192) + json.loads"),
                ("sdk", "SDK TaskStream (stream_format='ndjson')"),
            ):
                rate = rates[f"{name}_{framing}"]
                table.row(text, f"{rate:,.0f} obj/s", "", f"{rate / floor:.2f}x floor")
            ratios = ht["ratios"][framing]
            table.check("SDK vs floor", f"{ratios['sdk_to_floor']:.2f}x", ">= 0.8x (L)", ratios["sdk_to_floor"] >= 0.8)
            table.check(
                "SDK vs official recipe",
                f"{ratios['sdk_to_official']:.2f}x",
                ">= 1.3x (L)",
                ratios["sdk_to_official"] >= 1.3,
            )
        table.section(f"hosted update vs PROTOCOL.md TaskUpdate, SDK, {ht['events']:,} updates each")
        for framing in ("close", "chunked"):
            cost = ht["us_per_update"][framing]
            ratio = ht["hosted_to_v1"][framing]
            table.check(
                f"{framing}: us per update, hosted NDJSON / v1 SSE",
                f"{cost['hosted']:.2f} / {cost['v1']:.2f} us = {ratio:.2f}x",
                "<= 1.5x (L)",
                ratio <= 1.5,
            )
    dl = results.get("deltas")
    if dl:
        size = dl["delta_bytes"]
        table.section(f"delta events, infsh/llm-style answer in {size}-character deltas, into partial_output")
        table.check(
            f"tokens/s, {dl['tokens']:,}-token answer (median of {len(dl['seconds'])})",
            f"{dl['tokens_per_s']:,.0f} tok/s",
            ">= 50,000 (L)",
            dl["tokens_per_s"] >= 50_000,
        )
        curve = dl["curve_s"]
        marks = [int(k) for k in curve]
        table.row(
            f"{dl['big_bytes'] // 1024:,} KB answer: time at " + " / ".join(f"{m // 1024} KB" for m in marks),
            " / ".join(f"{curve[str(m)]:.2f}" for m in marks) + " s",
            "",
            f"{dl['big_updates']:,} updates",
        )
        doubling = dl["doubling_ratios"]
        worst = max(doubling) if doubling else float("inf")
        table.check(
            "time per doubling of the answer",
            " ".join(f"x{d:.2f}" for d in doubling) or "incomplete",
            "each <= x2.5 (linear x2, quadratic x4) (L)",
            bool(dl["big_complete"]) and worst <= 2.5,
        )
        table.check(
            f"tokens/s, {dl['big_bytes'] // 1024:,} KB answer ({dl['big_tokens']:,} deltas)",
            f"{dl['big_tokens_per_s']:,.0f} tok/s",
            ">= 50,000 (L)",
            dl["big_tokens_per_s"] >= 50_000,
        )
    idle_runs = results.get("idle") or {}
    idle = idle_runs.get("default")
    if idle:
        table.section(
            f"{idle['streams']:,} hosted streams on one client (stream_many), heartbeats only "
            f"({idle['heartbeat_s']:g} s), {idle['window_s']:.0f} s idle"
        )
        table.check("client RSS, peak", f"{idle['rss_peak_mb']:.1f} MB", "<= 300 MB (L)", idle["rss_peak_mb"] <= 300)
        table.check(
            "client CPU while idle",
            f"{idle['cpu_share'] * 100:.1f} % of one core",
            "<= 5 % (L)",
            idle["cpu_share"] <= 0.05,
        )
        table.row(
            "threads / all open after",
            f"{idle['threads']} / {idle['server_open_streams']}",
            "",
            f"opened in {idle['open_s']:.1f} s",
        )
        table.row(
            f"requests in the window (reconcile_interval {idle['reconcile_interval_s']:g} s)",
            f"{idle['task_reads_during']} GET /tasks/{{id}}",
            "",
            f"{idle['stream_requests_during']} stream reconnects",
        )
        alone = idle_runs.get("heartbeats_alone")
        if alone:
            table.row(
                f"client CPU, heartbeats alone (no reconcile, {alone['window_s']:.0f} s)",
                f"{alone['cpu_share'] * 100:.1f} % of one core",
                "",
                f"RSS {alone['rss_peak_mb']:.1f} MB, {alone['requests_during']} requests",
            )
    im = results.get("imports")
    if im:
        ms = im["ms"]
        table.section(f'python -c "import inferencesh", median of {im["runs"]}, alternated')
        table.row("this SDK / official 0.36.0", f"{ms['ours']:.0f} / {ms['official']:.0f} ms")
        table.row(
            "over a bare python -c pass",
            f"{im['ours_over_bare_ms']:.0f} / {im['official_over_bare_ms']:.0f} ms",
        )
        table.check("this SDK vs official", f"{im['ratio']:.2f}x", "<= 1.0x (L)", im["ratio"] <= 1.0)


# -- the chart ----------------------------------------------------------------------


def draw_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    colors = {"floor": "#888888", "sdk": "#d62728", "sseclient": "#1f77b4", "httpx_sse": "#2ca02c"}
    labels = {"floor": "floor", "sdk": "SDK", "sseclient": "sseclient-py", "httpx_sse": "httpx-sse"}

    tp = results.get("throughput")
    ax = axes[0]
    if tp:
        rates = tp["updates_per_s"]
        floor = rates["floor"]
        names = ["floor", "sdk", "sseclient", "httpx_sse"]
        xs = range(len(names))
        close = [rates[n] / 1000 for n in names]
        chunked = [rates.get(n + "_chunked", 0) / 1000 for n in names]
        ax.bar([x - 0.2 for x in xs], close, 0.4, color=[colors[n] for n in names], label="close-delimited")
        ax.bar(
            [x + 0.2 for x in xs],
            chunked,
            0.4,
            color=[colors[n] for n in names],
            alpha=0.45,
            hatch="//",
            label="chunked",
        )
        for x, value in zip(xs, close):
            ax.text(x - 0.2, value, f"{value * 1000 / floor:.2f}x", ha="center", va="bottom", fontsize=8)
        for x, value in zip(xs, chunked):
            if value:
                ax.text(x + 0.2, value, f"{value * 1000 / floor:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.axhline(0.8 * floor / 1000, color="black", linestyle="--", linewidth=1, label="0.8x floor target")
        ax.set_xticks(list(xs), [labels[n] for n in names])
        ax.set_ylabel("thousand updates / s")
        ax.set_title(f"Throughput, {tp['events']:,} updates (x = ratio to floor)")
        ax.legend(fontsize=8)

    lt = results.get("latency")
    ax = axes[1]
    if lt:
        names = ["floor", "sdk", "sseclient", "httpx_sse"]
        xs = range(len(names))
        p50 = [lt["readers"][n]["p50_ms"] for n in names]
        p99 = [lt["readers"][n]["p99_ms"] for n in names]
        ax.bar([x - 0.2 for x in xs], p50, 0.4, color=[colors[n] for n in names], label="p50")
        ax.bar([x + 0.2 for x in xs], p99, 0.4, color=[colors[n] for n in names], alpha=0.45, hatch="//", label="p99")
        ax.axhline(2.0, color="black", linestyle="--", linewidth=1, label="p99 target 2 ms")
        ax.set_xticks(list(xs), [labels[n] for n in names])
        ax.set_ylabel("ms (received - sent)")
        ax.set_title(f"Delivery latency, 1 update / {lt['interval_s'] * 1000:.0f} ms")
        ax.legend(fontsize=8)

    ax = axes[2]
    ab = results.get("abort")
    if ab:
        names = ["deadline overshoot", "cancel latency"]
        keys = ["deadline_overshoot", "cancel_latency"]
        p50 = [ab[k]["p50_ms"] for k in keys]
        p99 = [ab[k]["p99_ms"] for k in keys]
        ax.bar([x - 0.2 for x in range(2)], p50, 0.4, color="#9467bd", label="p50")
        ax.bar([x + 0.2 for x in range(2)], p99, 0.4, color="#9467bd", alpha=0.45, hatch="//", label="p99")
        ax.axhline(50, color="black", linestyle="--", linewidth=1, label="p99 target 50 ms")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.1)
        ax.set_xticks(range(2), names)
        ax.set_ylabel("ms (log scale)")
        ax.set_title(f"Abort on a stalled stream, {ab['trials']} trials")
        ax.legend(fontsize=8)
    fig.suptitle("inferencesh SDK benchmarks (" + results["meta"]["when"] + ", " + results["meta"]["machine"] + ")")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main -----------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print one table; write JSON and a chart.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[
            "throughput",
            "hosted",
            "deltas",
            "latency",
            "memory",
            "abort",
            "parallel",
            "idle",
            "imports",
            "server",
            "relay",
            "profile",
        ],
        help="run only these sections",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for results.json and chart.png")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    import psutil

    results: dict[str, Any] = {
        "meta": {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "quick": args.quick,
            "sizes": sizes,
            "python": platform.python_version(),
            "machine": f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}",
            "platform": platform.platform(),
        },
        "errors": {},
    }
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("throughput", lambda: throughput.run(sizes["throughput_events"], repeat=sizes["throughput_repeat"])),
        ("hosted", lambda: hosted.throughput(sizes["hosted_events"], sizes["hosted_repeat"])),
        ("deltas", lambda: hosted.deltas(sizes["delta_tokens"], sizes["delta_big"])),
        (
            "latency",
            lambda: {**latency.run(sizes["latency_updates"]), "hosted": latency.run_hosted(sizes["latency_updates"])},
        ),
        ("memory", lambda: memory.run(sizes["memory_updates"])),
        ("abort", lambda: abort.run(sizes["abort_trials"])),
        ("parallel", lambda: parallel.run(sizes["parallel_streams"])),
        (
            "idle",
            lambda: {
                "default": hosted.idle(sizes["idle_streams"], sizes["idle_window"]),
                "heartbeats_alone": hosted.idle(
                    sizes["idle_streams"], sizes["idle_window"] / 3, reconcile_interval=3600
                ),
            },
        ),
        ("imports", lambda: hosted.imports(sizes["import_runs"])),
        ("server", lambda: run_bench_server(sizes["server_streams"], sizes["server_count"])),
        ("relay", lambda: run_bench_relay(sizes["relay_events"])),
        (
            "profile",
            lambda: {
                "stages": profile_sdk.stages(sizes["throughput_events"]),
                "close": profile_sdk.profile(sizes["throughput_events"], "close"),
                "chunked": profile_sdk.profile(sizes["throughput_events"], "chunked"),
            },
        ),
    ]
    started = time.monotonic()
    for name, section in sections:
        if args.only and name not in args.only:
            continue
        _log(f"{name}...")
        t0 = time.monotonic()
        try:
            results[name] = section()
        except Exception as exc:  # one broken benchmark must not hide the others
            results["errors"][name] = "".join(traceback.format_exception(exc))
            _log(f"{name} FAILED: {exc!r}")
        _log(f"{name} done in {time.monotonic() - t0:.1f} s")
    results["meta"]["seconds"] = time.monotonic() - started

    table = build_table(results)
    results["verdicts"] = table.verdicts
    print(table.render())
    misses = [v for v in table.verdicts if not v["met"]]
    print(f"\n{len(table.verdicts) - len(misses)} of {len(table.verdicts)} targets met", end="")
    print(f"; missed: {', '.join(v['check'] + ' ' + v['target'] for v in misses)}" if misses else "")
    for name, error in results["errors"].items():
        print(f"\n{name} FAILED:\n{error}")

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.json", "w") as out:
        json.dump(results, out, indent=2, default=str)
    try:
        draw_chart(results, args.out / "chart.png")
    except Exception as exc:
        results["errors"]["chart"] = repr(exc)
        print(f"chart FAILED: {exc!r}")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'chart.png'} in {results['meta']['seconds']:.0f} s")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
