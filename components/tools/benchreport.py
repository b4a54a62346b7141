"""`servingstack bench report FILE|DIR ... [--json]`: the source document's table, measured.

It reads AIPerf's own summary files (`profile_export_aiperf.json`, one per sweep point) and, beside
each run, the `servingstack-benchmark.json` the benchmark Job wrote from the stack's config. For
every measured point it puts next to the measurement the plan-time model's values for the same
hardware and workload (servingstack.config.estimate / planning.performance, the `performance`
output's model) and the physical floor, the decode memory-bandwidth utilisation the measured ITL
implies, and $ per million output tokens at the environment's cost. Several runs print side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config.benchmark import METADATA_FILE, METADATA_SCHEMA
from ..planning.catalog import HOURS_PER_MONTH
from ..planning.performance import (
    ETA_BW_CAP,
    Workload,
    memory_bandwidth_utilization,
    predict,
    usd_per_million_tokens,
)

RESULT_FILE = "profile_export_aiperf.json"

#: AIPerf's metric definitions (aiperf 0.13.0 docs, metrics reference; performance-facts.md §7.2).
DEFINITIONS = {
    "output": "output tokens ÷ benchmark duration",
    "total": "(input + output tokens) ÷ benchmark duration",
    "ttft": "first content chunk − request start",
    "itl": "(request latency − TTFT) ÷ (output tokens − 1), per request (vLLM's TPOT)",
    "mbu": "(weights + KV bytes per decode step per GPU) ÷ ITL ÷ peak HBM bandwidth",
}


class BenchReportError(Exception):
    """Unreadable input: one line naming the file and what is wrong (exit 2)."""


@dataclass(frozen=True)
class Measured:
    """One sweep point as AIPerf reported it (milliseconds, tokens per second)."""

    source: str
    concurrency: int
    requested_input_tokens: int
    requested_output_tokens: int
    completed: int
    failed: int
    output_tokens_per_second: float
    total_tokens_per_second: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    input_tokens_mean: float
    output_tokens_mean: float
    output_tokens_total: float
    duration_s: float
    token_counts: str
    """server (usage fields) or client (the tokenizer)."""
    tool_version: str
    started: str = ""
    """When the measured phase started (the tool's start_time, ISO 8601): the day costs are priced on."""
    input_counted: bool = True
    """False when the tool could not count prompt tokens (Triton's `text_input` payload): input+output
    tok/s then uses the requested input length, which the tool's synthetic prompts are generated to."""


@dataclass
class Run:
    label: str
    root: str
    metadata: Optional[dict[str, Any]]
    points: list[Measured] = field(default_factory=list)


# ---- reading the tool's files ----------------------------------------------------------------

def _stat(doc: dict, key: str, stat: str, path: Path) -> float:
    try:
        value = doc[key][stat]
    except (KeyError, TypeError):
        raise BenchReportError(f"{path}: no {key}.{stat} — not an AIPerf streaming result "
                               "(was it run with --streaming?)") from None
    return float(value)


def _profiling_phase(doc: dict, path: Path) -> dict:
    phases = [p for p in (doc.get("input_config") or {}).get("phases", []) if p.get("kind") == "profiling"]
    if not phases:
        raise BenchReportError(f"{path}: input_config has no profiling phase")
    return phases[0]


def read_result(path: Path) -> Measured:
    """One AIPerf summary file (profile_export_aiperf.json) -> Measured."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise BenchReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or "aiperf_version" not in doc:
        raise BenchReportError(f"{path}: not an AIPerf summary (no aiperf_version) — pass the run directory or "
                               f"its {RESULT_FILE} files")
    phase = _profiling_phase(doc, path)
    prompts = ((doc["input_config"].get("datasets") or [{}])[0].get("prompts") or {})
    endpoint = doc["input_config"].get("endpoint") or {}
    failed = sum(int(e.get("count", 0)) for e in doc.get("error_summary") or [])
    if not (doc.get("request_count") or {}).get("avg"):
        first = ((doc.get("error_summary") or [{}])[0].get("error_details") or {}).get("message", "no error recorded")
        raise BenchReportError(f"{path}: no request completed ({failed} failed; first error: {first[:200]})")
    completed = int(_stat(doc, "request_count", "avg", path))
    isl = int(round(float((prompts.get("isl") or {}).get("mean", 0))))
    duration = _stat(doc, "benchmark_duration", "avg", path)
    output_total = _stat(doc, "total_output_tokens", "avg", path)
    counted = "total_token_throughput" in doc and "input_sequence_length" in doc
    if counted:
        total_tps, input_mean = (_stat(doc, "total_token_throughput", "avg", path),
                                 _stat(doc, "input_sequence_length", "avg", path))
    else:
        total_tps, input_mean = (completed * isl + output_total) / duration if duration > 0 else 0.0, float(isl)
    return Measured(
        source=str(path), concurrency=int(phase["concurrency"]),
        requested_input_tokens=isl,
        requested_output_tokens=int(round(float((prompts.get("osl") or {}).get("mean", 0)))),
        completed=completed, failed=failed,
        output_tokens_per_second=_stat(doc, "output_token_throughput", "avg", path),
        total_tokens_per_second=total_tps,
        ttft_p50_ms=_stat(doc, "time_to_first_token", "p50", path),
        ttft_p99_ms=_stat(doc, "time_to_first_token", "p99", path),
        itl_p50_ms=_stat(doc, "inter_token_latency", "p50", path),
        input_tokens_mean=input_mean,
        output_tokens_mean=_stat(doc, "output_sequence_length", "avg", path),
        output_tokens_total=output_total, duration_s=duration,
        token_counts="server" if endpoint.get("use_server_token_count") else "client",
        tool_version=str(doc["aiperf_version"]), started=str(doc.get("start_time") or ""), input_counted=counted,
    )


def _metadata_for(start: Path, stop: Path) -> tuple[Path, Optional[dict]]:
    """The nearest servingstack-benchmark.json from `start` up to `stop` (inclusive), and its folder."""
    here = start
    while True:
        candidate = here / METADATA_FILE
        if candidate.is_file():
            try:
                meta = json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise BenchReportError(f"{candidate}: not readable JSON ({exc})") from None
            if not isinstance(meta, dict) or meta.get("schema") != METADATA_SCHEMA:
                raise BenchReportError(f"{candidate}: not a {METADATA_SCHEMA} file")
            return here, meta
        if here == stop or here.parent == here:
            return start, None
        here = here.parent


def load_runs(paths: list[str]) -> list[Run]:
    """Group the tool's summary files under the given files/directories into runs (one per metadata file)."""
    runs: dict[str, Run] = {}
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            files = sorted(f for f in p.rglob(RESULT_FILE) if "phases" not in f.relative_to(p).parts)
            if not files:
                raise BenchReportError(f"{p}: no {RESULT_FILE} below it — pass a benchmark run directory "
                                       "(benchmarks/<stack>/<timestamp>/) or the tool's result files")
            stop = p
        elif p.is_file():
            files, stop = [p], p.parent.parent
        else:
            raise BenchReportError(f"{p}: no such file or directory")
        for f in files:
            root, meta = _metadata_for(f.parent, stop)
            key = str(root.resolve())
            if key not in runs:
                label = f"{meta['servingStack']} · {meta['stack']}" if meta else root.name
                runs[key] = Run(label=label, root=str(root), metadata=meta)
            runs[key].points.append(read_result(f))
    for run in runs.values():
        run.points.sort(key=lambda m: m.concurrency)
        seen = [m.concurrency for m in run.points]
        if len(set(seen)) != len(seen):
            dup = next(c for c in seen if seen.count(c) > 1)
            raise BenchReportError(f"{run.root}: two results at concurrency {dup} — pass one run per directory")
    return list(runs.values())


# ---- the model beside it ---------------------------------------------------------------------

def config_of(meta: dict) -> Any:
    """The StackConfig the Job was synthesized from, validated again (ConfigError on a bad file)."""
    from ..config import parse_stack_config

    raw = {("aws:region" if k == "region" else f"servingstack:{k}"): v for k, v in meta["config"].items()}
    return parse_stack_config(raw)


def priced_on(m: Measured) -> Optional[_dt.date]:
    """The day the point was measured (prices that change with the date, e.g. EKS extended support)."""
    try:
        return _dt.date.fromisoformat(m.started[:10]) if m.started else None
    except ValueError:
        return None


def replica_concurrencies(concurrency: int, replicas: int) -> list[int]:
    """How the Service spreads `concurrency` requests over replicas, the estimate's split: the first
    C mod R replicas (all when it divides) carry ceil(C/R), the others floor(C/R)."""
    high = concurrency % replicas or replicas
    return [math.ceil(concurrency / replicas)] * high + [concurrency // replicas] * (replicas - high)


def model_columns(meta: dict, m: Measured) -> dict[str, Any]:
    """The plan-time model and the floor for the measured point's workload on the run's hardware."""
    from ..config.estimate import engine_shape, estimate
    from ..config.workload import WorkloadConfig

    cfg = config_of(meta)
    stack = meta["servingStack"]
    workload = WorkloadConfig(input_tokens=m.requested_input_tokens, output_tokens=m.requested_output_tokens,
                              concurrency=m.concurrency)
    cfg = cfg.model_copy(update={"workload": workload})
    on = priced_on(m)
    e = estimate(cfg, stack, on=on)
    if e.performance is None:
        return {"notEstimated": "; ".join(e.warnings) or "no serving replicas"}
    s = cfg.serving
    model, instance, shape = s.architecture, cfg.serving_pool.instance, engine_shape(cfg, stack)
    hw = instance.hardware
    busiest = e.performance.replica
    ceiling = 0.0
    for c in replica_concurrencies(m.concurrency, s.replicas):
        if c > 0:
            ceiling += predict(model, instance, shape, Workload(m.requested_input_tokens, m.requested_output_tokens,
                                                                c)).output_ceiling_tokens_per_second
    per_request = m.requested_input_tokens + m.requested_output_tokens
    context = busiest.workload.mean_context
    serving_per_hour = e.cost.total_usd / HOURS_PER_MONTH
    all_in_per_hour = e.environment_usd / HOURS_PER_MONTH

    def mbu(itl_ms: float) -> float:
        return memory_bandwidth_utilization(model, shape, hw, busiest.batch, context, itl_ms / 1e3)

    return {
        "model": {
            "outputTokensPerSecond": e.performance.output_tokens_per_second,
            "totalTokensPerSecond": e.performance.total_tokens_per_second,
            "ttftMs": busiest.ttft_expected_ms,
            "itlMs": busiest.itl_expected_ms,
            "memoryBandwidthUtilization": mbu(busiest.itl_expected_ms),
            "usdPerMillionOutputTokens": e.performance.usd_per_million_output_tokens,
            "usdPerMillionOutputTokensAllIn": e.performance.usd_per_million_output_tokens_all_in,
            "batchPerReplica": busiest.batch, "queuedPerReplica": busiest.queued,
        },
        "floor": {
            "outputTokensPerSecond": ceiling,
            "totalTokensPerSecond": ceiling * per_request / m.requested_output_tokens,
            "ttftMs": busiest.ttft_floor_ms,
            "itlMs": busiest.itl_floor_ms,
            "memoryBandwidthUtilization": ETA_BW_CAP,
            "usdPerMillionOutputTokens": usd_per_million_tokens(serving_per_hour, ceiling),
        },
        "measured": {
            "memoryBandwidthUtilization": mbu(m.itl_p50_ms) if m.itl_p50_ms > 0 else None,
            "usdPerMillionOutputTokens": usd_per_million_tokens(serving_per_hour, m.output_tokens_per_second),
            "usdPerMillionOutputTokensAllIn": usd_per_million_tokens(all_in_per_hour, m.output_tokens_per_second),
        },
        "servingUsdPerHour": serving_per_hour, "environmentUsdPerHour": all_in_per_hour,
        "hardware": f"{s.replicas} x TP{s.tensor_parallel_size} on {cfg.serving_pool.instance_type} ({hw.name})",
    }


def flags(m: Measured, cols: dict[str, Any]) -> list[str]:
    """The protocol's checks (performance-facts.md §7.4 step 9) and the run's own health."""
    out = []
    if not m.input_counted:
        out.append(f"AIPerf does not count the prompt tokens of this endpoint's payload: input+output tok/s uses "
                   f"the requested {m.requested_input_tokens} input tokens per request")
    if m.failed:
        out.append(f"{m.failed} request(s) failed: the table describes the {m.completed} that completed")
    if m.requested_output_tokens and abs(m.output_tokens_mean - m.requested_output_tokens) > 0.01 * m.requested_output_tokens:
        out.append(f"outputs averaged {m.output_tokens_mean:.1f} tokens, not the {m.requested_output_tokens} asked for: "
                   "ignore_eos was not honoured or the token counts differ")
    floor = cols.get("floor")
    if floor:
        if m.itl_p50_ms < floor["itlMs"]:
            out.append(f"ITL P50 {m.itl_p50_ms:.1f} ms is below the physical floor {floor['itlMs']:.1f} ms: "
                       "quantization or speculative decoding is on, or the metric is defined differently")
        if m.output_tokens_per_second > floor["outputTokensPerSecond"]:
            out.append(f"output {m.output_tokens_per_second:,.0f} tok/s exceeds the ceiling "
                       f"{floor['outputTokensPerSecond']:,.0f}: input tokens counted, or the hardware differs")
        mbu = cols["measured"]["memoryBandwidthUtilization"]
        if mbu is not None and mbu > ETA_BW_CAP:
            out.append(f"implied MBU {mbu:.0%} exceeds the {ETA_BW_CAP:.0%} that HBM reaches: not bf16 weights as planned")
    return out


def report(paths: list[str]) -> dict[str, Any]:
    """The whole report as data (the --json document)."""
    runs = load_runs(paths)
    out = []
    for run in runs:
        meta = run.metadata
        points = []
        for m in run.points:
            cols = model_columns(meta, m) if meta else {}
            measured = {k: v for k, v in dataclasses.asdict(m).items()}
            measured.update((cols.get("measured") or {}))
            points.append({"concurrency": m.concurrency, "measured": measured, "model": cols.get("model"),
                           "floor": cols.get("floor"), "flags": flags(m, cols),
                           **({"notEstimated": cols["notEstimated"]} if "notEstimated" in cols else {})})
        out.append({
            "label": run.label, "directory": run.root,
            **({"stack": meta["stack"], "servingStack": meta["servingStack"], "model": meta["model"],
                "instanceType": meta["instanceType"], "replicas": meta["replicas"],
                "tensorParallelSize": meta["tensorParallelSize"], "runId": meta.get("runId"),
                "tool": meta.get("tool"), "tokenizer": meta.get("tokenizer")} if meta else {}),
            "points": points,
        })
    return {"definitions": {**DEFINITIONS, "tool": "aiperf"}, "runs": out}
