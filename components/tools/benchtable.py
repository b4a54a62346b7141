"""The `servingstack bench report` table: one Markdown table per measured concurrency, the runs side
by side (measured, model, floor), then each run's hardware, tool and flags, and the definitions."""

from __future__ import annotations

import math
from typing import Any, Optional

from ..config.benchmark import METADATA_FILE
from .benchreport import DEFINITIONS


def _num(value: Optional[float], digits: int = 0, prefix: str = "") -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    return f"{prefix}{value:,.{digits}f}"


def _pct(value: Optional[float], prefix: str = "") -> str:
    return "—" if value is None else f"{prefix}{value * 100:.0f} %"


ROWS: list[tuple[str, Any]] = [
    ("Requests completed / failed", lambda p: (f"{p['measured']['completed']:,} / {p['measured']['failed']:,}", "", "")),
    (f"Output tok/s ({DEFINITIONS['output']})", lambda p: (
        _num(p["measured"]["output_tokens_per_second"], 1), _num(_get(p, "model", "outputTokensPerSecond"), 1),
        _num(_get(p, "floor", "outputTokensPerSecond"), 1, "≤ "))),
    (f"Input+output tok/s ({DEFINITIONS['total']})", lambda p: (
        _num(p["measured"]["total_tokens_per_second"], 1), _num(_get(p, "model", "totalTokensPerSecond"), 1),
        _num(_get(p, "floor", "totalTokensPerSecond"), 1, "≤ "))),
    ("TTFT P50 (ms; model: mean)", lambda p: (
        _num(p["measured"]["ttft_p50_ms"], 1), _num(_get(p, "model", "ttftMs"), 1),
        _num(_get(p, "floor", "ttftMs"), 1, "≥ "))),
    ("TTFT P99 (ms)", lambda p: (_num(p["measured"]["ttft_p99_ms"], 1), "—",
                                 _num(_get(p, "floor", "ttftMs"), 1, "≥ "))),
    ("ITL P50 (ms; AIPerf: (latency − TTFT) ÷ (output tokens − 1))", lambda p: (
        _num(p["measured"]["itl_p50_ms"], 2), _num(_get(p, "model", "itlMs"), 2),
        _num(_get(p, "floor", "itlMs"), 2, "≥ "))),
    ("Decode memory-bandwidth utilisation", lambda p: (
        _pct(p["measured"].get("memoryBandwidthUtilization")), _pct(_get(p, "model", "memoryBandwidthUtilization")),
        _pct(_get(p, "floor", "memoryBandwidthUtilization"), "≤ "))),
    ("$ / 1M output tokens (serving nodes + licences)", lambda p: (
        _num(p["measured"].get("usdPerMillionOutputTokens"), 2, "$"),
        _num(_get(p, "model", "usdPerMillionOutputTokens"), 2, "$"),
        _num(_get(p, "floor", "usdPerMillionOutputTokens"), 2, "≥ $"))),
    ("$ / 1M output tokens (whole environment)", lambda p: (
        _num(p["measured"].get("usdPerMillionOutputTokensAllIn"), 2, "$"),
        _num(_get(p, "model", "usdPerMillionOutputTokensAllIn"), 2, "$"), "")),
]


def _get(point: dict, column: str, key: str) -> Optional[float]:
    return (point.get(column) or {}).get(key)


def render(doc: dict[str, Any]) -> str:
    """Markdown: one table per measured concurrency, the runs side by side (measured, model, floor)."""
    runs = doc["runs"]
    concurrencies = sorted({p["concurrency"] for r in runs for p in r["points"]})
    lines: list[str] = []
    for c in concurrencies:
        cells = [(r, next((p for p in r["points"] if p["concurrency"] == c), None)) for r in runs]
        first = next(p for _, p in cells if p)
        lines.append(f"### {c} concurrent request{'s' if c > 1 else ''} (closed loop), "
                     f"{first['measured']['requested_input_tokens']:,} input / "
                     f"{first['measured']['requested_output_tokens']:,} output tokens")
        lines.append("")
        header = ["Metric"] + [h for r, _ in cells for h in (f"{r['label']}", "model", "floor")]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---|" + "---:|" * (len(header) - 1))
        for title, fn in ROWS:
            row = [title]
            for _, p in cells:
                row += list(fn(p)) if p else ["—", "—", "—"]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    for r in runs:
        lines.append(f"**{r['label']}**: " + _run_note(r))
        for p in r["points"]:
            for note in p["flags"]:
                lines.append(f"- concurrency {p['concurrency']}: {note}")
            if p.get("notEstimated"):
                lines.append(f"- concurrency {p['concurrency']}: model not estimated — {p['notEstimated']}")
    lines.append("")
    lines.append("Definitions (AIPerf): TTFT = " + DEFINITIONS["ttft"] + "; ITL = " + DEFINITIONS["itl"]
                 + "; MBU = " + DEFINITIONS["mbu"] + ". The model is the plan-time estimate (README "
                 "'Performance model'); the floor is 100 % of peak bandwidth and FLOP/s.")
    return "\n".join(lines) + "\n"


def _run_note(run: dict) -> str:
    points = run["points"]
    tool = points[0]["measured"]["tool_version"] if points else "?"
    counts = {p["measured"]["token_counts"] for p in points}
    counted = ("output tokens from the server's usage" if counts == {"server"} else
               "output tokens counted by the client's tokenizer" if counts == {"client"} else "mixed token counts")
    if "model" not in run:
        return (f"AIPerf {tool}, {counted}; no {METADATA_FILE} beside the results, so no model or floor "
                f"({run['directory']}).")
    return (f"{run['model']}, {run['replicas']} replica(s) x TP{run['tensorParallelSize']} on {run['instanceType']}; "
            f"AIPerf {tool}, {counted}; run {run.get('runId')} ({run['directory']}).")
