"""The verdicts against issue 5's targets, and the results as a table, JSON, Markdown, PNG."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Check:
    figure: str
    value: str
    target: str
    ok: bool | None  # None: reported, no target

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "·"}[self.ok]


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _spread(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.2f} / p95 {p['p95']:.2f} / p99 {p['p99']:.2f} / max {p['max']:.1f}"


def _ratio(value: float) -> str:
    """Enough digits that a ratio printed next to its target never hides which side of
    it it is on (0.698 is not 0.70, 9.996 is not 10)."""
    return f"{value:.3f}×" if value < 10 else f"{value:.2f}×"


def _rate(value: float) -> str:
    return f"{value:,.0f} ev/s"


def checks(r: dict[str, Any]) -> list[Check]:
    out: list[Check] = []
    d = r.get("drain")
    if d:
        out.append(Check("(a) plain nats-py fetch(1000)+AckAll", _rate(d["plain_rate"]), "", None))
        out.append(Check("(b) one INSERT per event", _rate(d["naive_rate"]), "", None))
        out.append(Check("(c) plain COPY of the same rows", _rate(d["copy_rate"]), "", None))
        out.append(Check("(d) motionledger drain", _rate(d["ledger_rate"]), "", None))
        a, b = d["ledger_rate"] / d["plain_rate"], d["ledger_rate"] / d["naive_rate"]
        out.append(Check("drain ÷ (a)", _ratio(a), "≥ 0.8× (aim > 1×)", a >= 0.8))
        out.append(Check("drain ÷ (b)", _ratio(b), "≥ 10×", b >= 10))
        cpu = d.get("ledger_cpu_s_per_1000")
        if cpu is not None:
            out.append(Check("drain CPU s / 1000 ev", f"{cpu:.3f}", "", None))
    top = r.get("load_max")
    if top:
        out.append(
            Check(
                "max under steady load (publisher running)",
                f"{top['sustained']:,.0f} ev/s committed while {top['offered']:,.0f} offered"
                f" (drain without a publisher: {top['drain_rate']:,.0f})",
                "",
                None,
            )
        )
    for level in r.get("load", []):
        name = level["label"]
        c, v = level["commit_ms"], level["visible_ms"]
        got = f"offered {level['offered']:,.0f}, achieved {level['achieved']:,.0f} ev/s"
        out.append(Check(f"load {name}: rate", got, "", None))
        commit_ok = v_ok = cpu_ok = lag_ok = None
        if name == "1k":
            commit_ok, v_ok, cpu_ok = c["p99"] <= 5, v["p99"] <= 10, level["cpu_cores"] <= 0.25
        if name == "80% max":
            lag_ok = level["lag_ms"]["p99"] <= 50 and not level["lag_growing"]
        target = "p99 ≤ 5 ms" if commit_ok is not None else ""
        out.append(Check(f"load {name}: publish→commit ms", _spread(c), target, commit_ok))
        target = "p99 ≤ 10 ms" if v_ok is not None else ""
        out.append(Check(f"load {name}: publish→visible ms", _spread(v), target, v_ok))
        lag = level["lag_ms"]
        growing = "growing" if level["lag_growing"] else "flat"
        out.append(
            Check(
                f"load {name}: projection lag",
                f"p99 {lag['p99']:.2f} ms ({growing}: p90 {level['lag_first_third_p90_ms']:.1f}"
                f" → {level['lag_last_third_p90_ms']:.1f} ms)",
                "p99 ≤ 50 ms, not growing" if lag_ok is not None else "",
                lag_ok,
            )
        )
        out.append(
            Check(
                f"load {name}: daemon CPU",
                f"{level['cpu_cores']:.3f} cores, {level['cpu_s_per_1000']:.3f} s/1000 ev, "
                f"peak RSS {level['peak_rss_mb']:.0f} MB",
                "≤ 0.25 core" if cpu_ok is not None else "",
                cpu_ok,
            )
        )
    rb = r.get("rebuild")
    if rb and d:
        ratio = rb["rate"] / d["copy_rate"]
        out.append(Check("rebuild (all read tables)", _rate(rb["rate"]), "", None))
        out.append(Check("rebuild ÷ (c)", _ratio(ratio), "≥ 0.7×", ratio >= 0.7))
    if r.get("rebuild_big"):
        big = r["rebuild_big"]
        out.append(Check(f"rebuild at {big['events']:,} events", _rate(big["rate"]), "", None))
    q = r.get("queries")
    if q:
        page = q["page"]
        for name in ("timeline", "stills", "events_page_1", f"events_page_{page}"):
            s = q["latency_ms"][name]
            out.append(
                Check(
                    f"query {name} ({q['events']:,} ev session)",
                    f"p50 {_ms(s['p50'])} / p99 {_ms(s['p99'])}",
                    "p99 ≤ 5 ms",
                    s["p99"] <= 5,
                )
            )
        first, last = q["latency_ms"]["events_page_1"], q["latency_ms"][f"events_page_{page}"]
        ratio = last["p50"] / first["p50"]
        out.append(Check(f"page {page} ÷ page 1 (p50)", _ratio(ratio), "≤ 1.5×", ratio <= 1.5))
    out += _derived_checks(r.get("derived"))
    out += _live_checks(r.get("live"))
    sc = r.get("scale")
    if sc:
        ratio = sc["big_us_per_event"] / sc["small_us_per_event"]
        big, small = sc["big_us_per_event"], sc["small_us_per_event"]
        out.append(
            Check(
                f"per-event cost, log {sc['big_log']:,} vs {sc['small_log']:,}",
                f"{big:.1f} vs {small:.1f} µs → {_ratio(ratio)}",
                "≤ 1.3×",
                ratio <= 1.3,
            )
        )
        if "big_peak_rss_mb" in sc:
            big_rss, small_rss = sc["big_peak_rss_mb"], sc["small_peak_rss_mb"]
            grew = big_rss / small_rss
            out.append(
                Check(
                    f"daemon peak RSS, log {sc['big_log']:,} vs {sc['small_log']:,}",
                    f"{big_rss:.0f} vs {small_rss:.0f} MB → {_ratio(grew)}",
                    "≤ 1.5×",
                    grew <= 1.5,
                )
            )
    return out


def _derived_checks(dr: dict[str, Any] | None) -> list[Check]:
    """Issue 14: the derived reads' latency, a full cut-log page, and asOf against without."""
    if not dr:
        return []
    out = []
    for name in ("cut_log_minute", "hero_windows_minute", "alignment_minute"):
        s = dr[name]
        out.append(
            Check(
                f"derived {name.replace('_', ' ')} ({dr['events']:,} ev session)",
                f"p50 {_ms(s['p50'])} / p99 {_ms(s['p99'])}",
                "p99 ≤ 10 ms",
                s["p99"] <= 10,
            )
        )
    page = dr["full_page"]["latency_ms"]
    out.append(
        Check(
            f"derived cut-log full page (10,000 segments of {dr['cuts']:,} cuts)",
            f"p50 {_ms(page['p50'])} / p99 {_ms(page['p99'])}",
            "p99 ≤ 300 ms",
            page["p99"] <= 300,
        )
    )
    for name, with_as_of, without in (
        ("cut-log minute", dr["cut_log_minute_as_of"], dr["cut_log_minute"]),
        ("timeline", dr["timeline_as_of"], dr["timeline"]),
    ):
        ratio = with_as_of["p50"] / without["p50"]
        tail = with_as_of["p99"] / without["p99"]
        out.append(
            Check(
                f"asOf ÷ without: {name} (p50; p99)",
                f"{_ratio(ratio)}; {_ratio(tail)}",
                "≤ 3×",
                ratio <= 3 and tail <= 3,
            )
        )
    return out


def _live_checks(lv: dict[str, Any] | None) -> list[Check]:
    """Issue 13: the catch-up index's cost to the drain, and followers over SSE."""
    if not lv:
        return []
    ix = lv["index"]
    out = [
        Check(
            f"drain with ÷ without the catch-up index ({ix['events']:,} ev)",
            f"{_rate(ix['with_rate'])} ÷ {_rate(ix['without_rate'])} = {_ratio(ix['ratio'])}",
            "",
            None,
        )
    ]
    plain = {lv_["rate"]: lv_ for lv_ in lv["levels"] if not lv_["stalled"]}
    for level in lv["levels"]:
        lat = level["latency_ms"]
        name = level["label"]
        out.append(
            Check(
                f"live {name}: publish→client",
                f"p50 {_ms(lat['p50'])} / p99 {_ms(lat['p99'])}"
                + ("" if level["complete"] else " (INCOMPLETE)"),
                "p99 ≤ 50 ms, every event",
                lat["p99"] <= 50 and level["complete"],
            )
        )
        per = level.get("cpu_cores_per_1000_deliveries")
        cpu = f"{level['cpu_cores']:.3f} cores at {level['deliveries_per_s']:,.0f} deliveries/s"
        if per is not None:
            cpu += f" ({level['baseline_cpu_cores']:.3f} without followers: "
            cpu += f"+{per:.3f} core per 1,000 deliveries/s)"
        out.append(Check(f"live {name}: daemon CPU", cpu, "", None))
        out.append(
            Check(
                f"live {name}: daemon RSS",
                f"{level['rss_mb_first_third']:.0f} → {level['rss_mb_last_third']:.0f} MB "
                f"(max {level['rss_mb_max']:.0f}); dropped {level['dropped']:.0f}",
                "flat",
                level["rss_mb_last_third"] <= level["rss_mb_first_third"] * 1.2 + 10,
            )
        )
        if level["stalled"] and level["rate"] in plain:
            other = plain[level["rate"]]["latency_ms"]["p99"]
            out.append(
                Check(
                    f"live {name}: the others' p99 vs without it",
                    f"{_ms(lat['p99'])} vs {_ms(other)}",
                    "unchanged (≤ 50 ms)",
                    lat["p99"] <= 50,
                )
            )
    return out


def table(results: dict[str, Any]) -> Table:
    meta = results["meta"]
    title = f"motionledger bench — {meta['when']} — {meta['machine']}"
    t = Table(title=title, title_justify="left")
    t.add_column("figure")
    t.add_column("value")
    t.add_column("target")
    t.add_column("", justify="center")
    for c in checks(results):
        style = {True: "green", False: "red", None: ""}[c.ok]
        t.add_row(c.figure, c.value, c.target, f"[{style}]{c.mark}[/{style}]" if style else c.mark)
    return t


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# motionledger bench, {meta['when']}",
        "",
        f"Machine: {meta['machine']}; load average at start "
        f"{meta['loadavg_start']}, at end {meta.get('loadavg_end', '?')}. "
        f"PostgreSQL {meta['postgres']} (fsync {meta['fsync']}, synchronous_commit "
        f"{meta['synchronous_commit']}); nats-server {meta['nats_server']}; Python "
        f"{meta['python']}; mode: {meta['mode']}; {meta['seconds']:.0f} s in all.",
        "",
        "| figure | value | target | |",
        "|---|---|---|---|",
    ]
    for c in checks(results):
        lines.append(f"| {c.figure} | {c.value} | {c.target} | {c.mark} |")
    lines += ["", "How each figure is measured: see `bench/README.md`.", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    loads = results.get("load", [])
    if loads:
        x = [level["achieved"] for level in loads]
        for key, label, marker in (
            ("commit_ms", "publish→commit", "o"),
            ("visible_ms", "publish→visible", "s"),
        ):
            for q, linestyle in (("p50", "-"), ("p99", "--")):
                y = [max(1e-3, level[key][q]) for level in loads]
                left.plot(x, y, marker=marker, linestyle=linestyle, label=f"{label} {q}")
        left.set_xscale("log")
        left.set_yscale("log")
        left.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        left.set_xlabel("offered load (events/s, achieved)")
        left.set_ylabel("latency (ms)")
        left.set_title("latency against offered load")
        left.axhline(5, color="grey", linewidth=0.8, linestyle=":")
        left.axhline(10, color="grey", linewidth=0.8, linestyle=":")
        left.legend(fontsize=8)
        left.grid(True, which="both", alpha=0.3)
    d = results.get("drain")
    if d:
        names = ["(a) plain\nnats-py", "(b) INSERT\nper event", "(c) COPY", "(d) ledger\ndrain"]
        values = [d["plain_rate"], d["naive_rate"], d["copy_rate"], d["ledger_rate"]]
        if results.get("rebuild"):
            names.append("rebuild")
            values.append(results["rebuild"]["rate"])
        colours = ["#888", "#bbb", "#999", "#2a7", "#27a"][: len(values)]
        bars = right.bar(names, values, color=colours)
        for bar, value in zip(bars, values, strict=True):
            right.annotate(
                f"{value:,.0f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        right.set_ylabel("events/s")
        right.set_title("throughput, same backlog, same run")
    fig.suptitle(f"motionledger bench {results['meta']['when']} ({results['meta']['machine']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results["checks"] = [c.__dict__ for c in checks(results)]
    paths = [out_dir / f"{stamp}.json", out_dir / f"{stamp}.md"]
    paths[0].write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
    paths[1].write_text(markdown(results))
    png = out_dir / f"{stamp}.png"
    if plot(results, png):
        paths.append(png)
    return paths


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def show(results: dict[str, Any], console: Console) -> None:
    console.print(table(results))
