"""End to end: the real load generator (AIPerf from PyPI, the Job's version) runs the Job's own
arguments against a streaming server on loopback with injected latencies, and `servingstack bench
report` on the tool's real output recovers them. Nothing here writes a result file by hand.

Two runs, laid out as the Job uploads them (a metadata file beside one folder per sweep point):
  vllm  — the prod stack's plan (OpenAI /v1/completions, server-reported token counts), points 1 and 4
  triton — the staging stack's plan (Triton generate_stream via AIPerf's template endpoint, tokens
           counted by the client's tokenizer), point 4
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import set_key, stack_config
from loopback_llm import LoopbackLLM, Served, write_tokenizer
from servingstack.config import parse_stack_config
from servingstack.config.benchmark import METADATA_FILE, benchmark_metadata, benchmark_plan
from servingstack.config.estimate import engine_shape, estimate
from servingstack.planning.performance import Workload, memory_bandwidth_utilization, predict
from servingstack.serving.benchmark_spec import aiperf_args
from servingstack.tools.benchreport import replica_concurrencies, report
from servingstack.tools.synth import engine_config

pytestmark = pytest.mark.aiperf

#: Injected latencies. The client's own overhead (sending, waking up to read the first chunk) is
#: part of what it measures: on a shared 2-core machine under load it was 2-15 ms at the median
#: (and a sleeping server thread woke up to 50 ms late), so the injected TTFT is large enough that
#: 10 % is not spent on the machine's scheduling; the inter-token gaps are deadline-scheduled.
TTFT_S, ITL_S = 0.300, 0.030
ISL, OSL = 64, 20
TOLERANCE = 0.10


def _config(stack: str, sweep: list[int]):
    raw = stack_config(stack)
    set_key(raw, "servingstack:workload", {"inputTokens": ISL, "outputTokens": OSL, "concurrency": 4})
    set_key(raw, "servingstack:benchmark", {"enabled": True, "concurrency": sweep})
    config, _, _ = engine_config(raw)
    return parse_stack_config(config)


def _run(exe: Path, cfg, stack: str, root: Path, server: LoopbackLLM, tokenizer: Path) -> Path:
    plan = benchmark_plan(cfg, stack)
    run_dir = root / plan.serving_stack
    run_dir.mkdir(parents=True)
    for point in plan.points:
        # The Job's arguments for this point; only the endpoint, the tokenizer, the wait for the
        # model and the extra metrics endpoint (a cluster URL) differ.
        args = aiperf_args(plan, point, str(run_dir / point.directory), url=server.url, tokenizer=str(tokenizer),
                           wait_seconds=60, server_metrics_url="")
        # A local tokenizer path never reaches the hub (AIPerf's HF_HUB_OFFLINE path would treat it as a
        # repo id, so it is not set).
        env = {**os.environ, "HOME": str(root)}
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, f"aiperf failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (run_dir / METADATA_FILE).write_text(json.dumps(benchmark_metadata(cfg, plan)))
    return run_dir


def _measure(exe: Path, root: Path) -> dict:
    tokenizer = write_tokenizer(root / "tokenizer", str(exe.parent / "python"))
    out: dict = {}
    # Every 10th generate_stream request fails before inference, as Triton answers one (HTTP 400 JSON).
    with LoopbackLLM(ttft_s=TTFT_S, itl_s=ITL_S, fail_generate_every=10) as server:
        out["vllm"] = _run(exe, _config("prod", [1]), "prod", root, server, tokenizer)
        out["triton"] = _run(exe, _config("staging", [4]), "staging", root, server, tokenizer)
        out["log"] = list(server.log)
    return out


@pytest.fixture(scope="session")
def runs(aiperf_exe, tmp_path_factory):
    """The tool's runs, once per test session: under pytest-xdist the first worker that needs them
    measures (the others wait on a lock) and the server's log is shared through a JSON file."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return _measure(aiperf_exe, tmp_path_factory.mktemp("bench"))
    shared = tmp_path_factory.getbasetemp().parent / "bench-e2e"  # the session's, beside each worker's
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "runs.json"
        if not done.is_file():
            out = _measure(aiperf_exe, shared / worker)
            done.write_text(json.dumps({"vllm": str(out["vllm"]), "triton": str(out["triton"]),
                                        "log": [dataclasses.asdict(s) for s in out["log"]]}))
        doc = json.loads(done.read_text())
    return {"vllm": Path(doc["vllm"]), "triton": Path(doc["triton"]), "log": [Served(**s) for s in doc["log"]]}


def _failed_while_profiling(runs, name: str, concurrency: int) -> int:
    """Failures the server injected while the tool's profiling phase ran (its own phase_manifest.json)."""
    manifest = json.loads((runs[name] / f"c{concurrency:04d}" / "phase_manifest.json").read_text())
    (phase,) = [ph for ph in manifest["phases"] if ph["phase_kind"] == "profiling"]
    path = "/v1/completions" if name == "vllm" else "/v2/models/llama-70b/generate_stream"
    return sum(1 for s in runs["log"] if s.failed and s.path == path
               and phase["start_ns"] <= s.arrived_ns <= phase["end_ns"])


def _points(run_dir: Path) -> list[dict]:
    (run,) = report([str(run_dir)])["runs"]
    return run["points"]


@pytest.mark.parametrize("name,concurrencies,counts", [("vllm", [1, 4], "server"), ("triton", [4], "client")])
def test_report_recovers_injected_latencies(runs, name, concurrencies, counts):
    points = _points(runs[name])
    assert [p["concurrency"] for p in points] == concurrencies
    for p in points:
        m = p["measured"]
        assert m["token_counts"] == counts
        assert abs(m["ttft_p50_ms"] - TTFT_S * 1e3) <= TOLERANCE * TTFT_S * 1e3, m["ttft_p50_ms"]
        assert abs(m["itl_p50_ms"] - ITL_S * 1e3) <= TOLERANCE * ITL_S * 1e3, m["itl_p50_ms"]
        # 20 x concurrency requests, every completed one of OSL tokens; the failures are the server's.
        assert m["completed"] + m["failed"] == 20 * p["concurrency"]
        assert m["failed"] == _failed_while_profiling(runs, name, p["concurrency"])
        assert (m["failed"] > 0) == (name == "triton")
        assert m["output_tokens_mean"] == OSL and m["output_tokens_total"] == OSL * m["completed"]
        assert m["requested_input_tokens"] == ISL and m["requested_output_tokens"] == OSL


def test_the_server_saw_the_protocol(runs):
    """What reached the server: ignore_eos on every request, OSL tokens asked for and sent, and the
    measured requests plus the warm-up (concurrency requests per point) and the readiness probe."""
    log = runs["log"]
    assert all(s.max_tokens == s.sent_tokens for s in log if not s.failed)
    benchmark = [s for s in log if s.max_tokens == OSL]  # the readiness probe asks for one token
    probes = [s for s in log if s.max_tokens != OSL]
    assert all(s.max_tokens == 1 for s in probes) and len(probes) <= 3
    assert all(s.ignore_eos is True for s in benchmark)
    openai = [s for s in benchmark if s.path == "/v1/completions"]
    triton = [s for s in benchmark if s.path.endswith("/generate_stream")]
    # measured + warm-up (one per concurrent slot) per point: vllm 1 and 4, triton 4
    assert len(openai) == (20 + 1) * 1 + (20 + 1) * 4 and all(s.usage_requested for s in openai)
    assert len(triton) == (20 + 1) * 4
    assert {s.path for s in triton} == {"/v2/models/llama-70b/generate_stream"}
    assert all(s.prompt_words == ISL for s in benchmark)


def test_report_model_and_floor_are_the_performance_model(runs):
    """The report's model and floor columns are the plan-time model's values for the run's stack
    config at the measured workload — computed here again with the model's own functions."""
    for name, stack in (("vllm", "prod"), ("triton", "staging")):
        meta = json.loads((runs[name] / METADATA_FILE).read_text())
        assert meta["stack"] == stack and meta["servingStack"] == name
        cfg = _config(stack, [1] if name == "vllm" else [4])
        for p in _points(runs[name]):
            c = p["concurrency"]
            env = estimate(cfg.model_copy(update={"workload": cfg.workload.model_copy(update={"concurrency": c})}),
                           name, on=datetime.date.fromisoformat(p["measured"]["started"][:10]))
            s = cfg.serving
            shape = engine_shape(cfg, name)
            busiest = predict(s.architecture, cfg.serving_pool.instance, shape,
                              Workload(ISL, OSL, -(-c // s.replicas)))
            assert p["model"]["outputTokensPerSecond"] == pytest.approx(env.performance.output_tokens_per_second, rel=1e-12)
            assert p["model"]["totalTokensPerSecond"] == pytest.approx(env.performance.total_tokens_per_second, rel=1e-12)
            assert p["model"]["itlMs"] == pytest.approx(busiest.itl_expected_ms, rel=1e-12)
            assert p["model"]["ttftMs"] == pytest.approx(busiest.ttft_expected_ms, rel=1e-12)
            assert p["floor"]["itlMs"] == pytest.approx(busiest.itl_floor_ms, rel=1e-12)
            assert p["floor"]["ttftMs"] == pytest.approx(busiest.ttft_floor_ms, rel=1e-12)
            ceiling = sum(predict(s.architecture, cfg.serving_pool.instance, shape, Workload(ISL, OSL, k))
                          .output_ceiling_tokens_per_second for k in replica_concurrencies(c, s.replicas) if k)
            assert p["floor"]["outputTokensPerSecond"] == pytest.approx(ceiling, rel=1e-12)
            assert p["model"]["usdPerMillionOutputTokens"] == pytest.approx(
                env.performance.usd_per_million_output_tokens, rel=1e-12)
            mbu = memory_bandwidth_utilization(s.architecture, shape, cfg.serving_pool.instance.hardware,
                                               busiest.batch, busiest.workload.mean_context,
                                               p["measured"]["itl_p50_ms"] / 1e3)
            assert p["measured"]["memoryBandwidthUtilization"] == pytest.approx(mbu, rel=1e-12)
            # A loopback server at 30 ms/token beats a 70B model's physics on A100s: the report says so.
            assert any("below the physical floor" in f for f in p["flags"])
            if p["measured"]["failed"]:
                assert any(f.startswith(f"{p['measured']['failed']} request(s) failed") for f in p["flags"])


def test_cli_prints_the_stacks_side_by_side(runs):
    cmd = [sys.executable, "-m", "servingstack.tools.cli", "bench", "report", str(runs["vllm"]), str(runs["triton"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| Metric")]
    assert table[-1].startswith("| Metric | vllm · prod | model | floor | triton · staging | model | floor |")
    for row in ("Output tok/s", "Input+output tok/s", "TTFT P50", "TTFT P99", "ITL P50", "Requests completed / failed",
                "memory-bandwidth utilisation", "$ / 1M output tokens"):
        assert row in proc.stdout
    assert "does not count the prompt tokens" in proc.stdout  # Triton's text_input, said, not hidden
    doc = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120).stdout)
    assert [r["label"] for r in doc["runs"]] == ["vllm · prod", "triton · staging"]


def test_a_single_result_file_reports_too(runs):
    """A FILE argument finds the run's metadata one folder up, as the Job laid it out."""
    (point,) = [p for p in runs["vllm"].iterdir() if p.name == "c0004"]
    (run,) = report([str(point / "profile_export_aiperf.json")])["runs"]
    assert run["servingStack"] == "vllm" and [p["concurrency"] for p in run["points"]] == [4]
