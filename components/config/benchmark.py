"""`servingstack:benchmark`: measure the deployed endpoint with a pinned load generator (off by default).

The protocol is performance-facts.md §7.4: one tool and version for all three stacks (NVIDIA AIPerf),
fixed input/output lengths from `servingstack:workload`, `ignore_eos`, greedy sampling, streaming, a
warm-up, a closed-loop concurrency sweep that always includes the workload's concurrency, and at
least 20 x concurrency requests per point. `benchmark_plan` turns a validated config into what the Job
runs; `benchmark_metadata` is the file the Job writes beside the tool's results so that
`servingstack bench report` can put the plan-time model next to the measurement.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from pydantic import Field, field_validator

from ..planning import catalog
from .errors import RuleError
from .fields import IMAGE, ConfigModel

if TYPE_CHECKING:
    from .models import StackConfig

DEFAULT_SWEEP = (1, 8, 32, 64)
METADATA_FILE = "servingstack-benchmark.json"
METADATA_SCHEMA = "servingstack.benchmark/v1"
RESULTS_PREFIX = "benchmarks"
#: How long the first point waits for the endpoint to answer a real inference request (a fresh
#: replica may still be loading its weights), seconds; later points wait less.
FIRST_WAIT_SECONDS = 1800
LATER_WAIT_SECONDS = 300
SERVICE_ACCOUNT = "benchmark"


def check_pinned_image(value: str) -> str:
    """An image pinned by a release tag or an @sha256 digest; `latest` or no tag is refused."""
    if "@sha256:" in value:
        return value
    last = value.rsplit("/", 1)[-1]
    if ":" not in last:
        raise ValueError(f"'{value}' has no tag — pin a release tag (repo:1.2.3) or an @sha256 digest")
    if last.rsplit(":", 1)[1] == "latest":
        raise ValueError(f"'{value}' is not pinned — `latest` moves; use a release tag or an @sha256 digest")
    return value


class BenchmarkConfig(ConfigModel):
    enabled: bool = False
    """Run the benchmark Job against the environment's own Service (it reruns when runId or any setting changes)."""
    run_id: str = Field("1", pattern=r"^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$")
    """Names the Job (benchmark-<runId>): change it to run the same benchmark again."""
    image: str = Field(catalog.AIPERF_IMAGE, pattern=IMAGE)
    """Load-generator image (NVIDIA AIPerf), by release tag or @sha256 digest, never latest."""
    uploader_image: str = Field(catalog.AWS_CLI_IMAGE, pattern=IMAGE)
    """Image that uploads the result files to the model store (AWS CLI v2 >= 2.15 for Pod Identity)."""
    concurrency: list[int] = Field(default_factory=lambda: list(DEFAULT_SWEEP), min_length=1, max_length=16)
    """Concurrent requests per sweep point (closed loop, across all replicas); workload.concurrency is always added."""
    requests_per_concurrency: int = Field(20, ge=20, le=1000)
    """Requests measured per point = this x the point's concurrency (the protocol's minimum is 20)."""
    warmup_requests_per_concurrency: int = Field(1, ge=1, le=100)
    """Warm-up requests per point (not measured) = this x the point's concurrency."""
    tokenizer: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """Hugging Face tokenizer for prompt lengths and client-side token counts (default: serving.model)."""
    cpu: float = Field(2, gt=0, le=64)
    """CPU cores the load generator may use (limit; it requests half)."""
    memory_gib: int = Field(4, ge=1, le=256)
    """Memory (GiB) the load generator requests and is limited to."""
    timeout_minutes: Optional[int] = Field(None, ge=10, le=2880)
    """Job deadline; default: three times the plan-time model's duration of the sweep plus the wait for the model."""

    @field_validator("image", "uploader_image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_pinned_image(v)

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, v: list[int]) -> list[int]:
        bad = [c for c in v if not 1 <= c <= 4096]
        if bad:
            raise ValueError(f"{bad[0]} is not a concurrency from 1 to 4096")
        if len(set(v)) != len(v):
            raise ValueError(f"{v} lists a concurrency twice — list each point once")
        return v


def benchmark_rules(cfg: "StackConfig") -> None:
    """Cross-section rules, raised from StackConfig's validator (keys relative to the stack config)."""
    b = cfg.benchmark
    if not b.enabled:
        return
    if cfg.serving.replicas == 0:
        raise RuleError("benchmark.enabled", "true needs serving.replicas >= 1 (there is no endpoint to measure) — "
                        "scale the serving stack up or set benchmark.enabled: false")
    per_request = cfg.workload.input_tokens + cfg.workload.output_tokens
    if per_request > cfg.serving.max_model_len:
        raise RuleError("benchmark.enabled", f"true with workload {cfg.workload.input_tokens}+"
                        f"{cfg.workload.output_tokens} tokens per request, more than serving.maxModelLen "
                        f"{cfg.serving.max_model_len}: every request would be rejected — raise maxModelLen or "
                        "shorten workload.inputTokens/outputTokens")


# ---- the plan the Job runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkPoint:
    concurrency: int
    requests: int
    warmup_requests: int

    @property
    def directory(self) -> str:
        """Where the tool writes this point's files, relative to the run's results directory."""
        return f"c{self.concurrency:04d}"


@dataclass(frozen=True)
class BenchmarkPlan:
    """Everything the benchmark Job needs, decided from the config alone (pure)."""

    stack: str
    """The Pulumi stack: results land under benchmarks/<stack>/<timestamp>/."""
    serving_stack: str
    run_id: str
    namespace: str
    image: str
    uploader_image: str
    endpoint: str
    """Base URL of the environment's Service, http://<service>.<namespace>.svc.cluster.local:8000."""
    endpoint_type: str
    """AIPerf endpoint type: completions (OpenAI /v1/completions: vLLM, NIM) or template (Triton)."""
    model_name: str
    """The model name requests carry (vLLM and NIM route on it)."""
    tokenizer: str
    input_tokens: int
    output_tokens: int
    points: tuple[BenchmarkPoint, ...]
    server_token_counts: bool
    """True: output tokens counted from the server's `usage` (vLLM, NIM); False: by the client's tokenizer."""
    custom_path: Optional[str] = None
    """Triton: /v2/models/<name>/generate_stream."""
    server_metrics_url: Optional[str] = None
    """A Prometheus endpoint to scrape besides <endpoint>/metrics (Triton :8002, NIM /v1/metrics)."""
    cpu: float = 2.0
    memory_gib: int = 4
    deadline_seconds: int = 3600

    @property
    def job_name(self) -> str:
        return f"benchmark-{self.run_id}"

    @property
    def results_prefix(self) -> str:
        """Key prefix the Job may write under (its IAM role allows nothing else)."""
        return f"{RESULTS_PREFIX}/{self.stack}/"


def sweep(cfg: "StackConfig") -> list[int]:
    """The sweep's concurrencies, ascending, always including the workload's."""
    return sorted({*cfg.benchmark.concurrency, cfg.workload.concurrency})


def benchmark_plan(cfg: "StackConfig", stack: str) -> BenchmarkPlan:
    s, b, w = cfg.serving, cfg.benchmark, cfg.workload
    stack_kind = str(s.stack)
    endpoint = f"http://{s.service_name}.{s.namespace}.svc.cluster.local:8000"
    points = tuple(BenchmarkPoint(c, b.requests_per_concurrency * c, b.warmup_requests_per_concurrency * c)
                   for c in sweep(cfg))
    triton = stack_kind == "triton"
    metrics = {"triton": f"http://{s.service_name}.{s.namespace}.svc.cluster.local:8002/metrics",
               "nim": f"{endpoint}/v1/metrics"}.get(stack_kind)
    minutes = b.timeout_minutes or default_timeout_minutes(cfg, points)
    return BenchmarkPlan(
        stack=stack, serving_stack=stack_kind, run_id=b.run_id, namespace=s.namespace, image=b.image,
        uploader_image=b.uploader_image, endpoint=endpoint, endpoint_type="template" if triton else "completions",
        model_name=s.served_model_name or s.model, tokenizer=b.tokenizer or s.model,
        input_tokens=w.input_tokens, output_tokens=w.output_tokens, points=points,
        server_token_counts=not triton,
        custom_path=f"/v2/models/{s.triton.model_name}/generate_stream" if triton else None,
        server_metrics_url=metrics, cpu=b.cpu, memory_gib=b.memory_gib, deadline_seconds=minutes * 60)


def default_timeout_minutes(cfg: "StackConfig", points: tuple[BenchmarkPoint, ...]) -> int:
    """3 x the model's time for every point's warm-up and measured requests, plus the first wait."""
    from ..planning.performance import Workload, predict
    from ..planning.sizing import FitError

    s, w = cfg.serving, cfg.workload
    seconds = 0.0
    for p in points:
        per_replica = Workload(w.input_tokens, w.output_tokens, max(1, math.ceil(p.concurrency / s.replicas)))
        try:
            e2e = predict(s.architecture, cfg.serving_pool.instance, s.shape, per_replica).e2e_seconds
        except FitError:
            e2e = 60.0
        seconds += (p.requests + p.warmup_requests) / p.concurrency * e2e
    return max(30, math.ceil((3 * seconds + FIRST_WAIT_SECONDS) / 60))


def benchmark_metadata(cfg: "StackConfig", plan: BenchmarkPlan) -> dict[str, Any]:
    """The file the Job writes beside the tool's results: what was measured, with which tool, and the
    validated stack config (secrets are never part of it), so the report can rebuild the plan-time
    model and the environment's cost for exactly this run (priced on the day the tool ran). The same
    config gives the same bytes: nothing here depends on when it was synthesized."""
    return {
        "schema": METADATA_SCHEMA,
        "stack": plan.stack,
        "runId": plan.run_id,
        "servingStack": plan.serving_stack,
        "model": cfg.serving.model,
        "instanceType": cfg.serving_pool.instance_type,
        "replicas": cfg.serving.replicas,
        "tensorParallelSize": cfg.serving.tensor_parallel_size,
        "workload": {"inputTokens": plan.input_tokens, "outputTokens": plan.output_tokens},
        "sweep": [{"concurrency": p.concurrency, "requests": p.requests, "warmupRequests": p.warmup_requests,
                   "directory": p.directory} for p in plan.points],
        "tool": {"name": "aiperf", "version": tool_version(plan.image), "image": plan.image},
        "endpoint": {"url": plan.endpoint, "type": plan.endpoint_type,
                     **({"path": plan.custom_path} if plan.custom_path else {})},
        "tokenCounts": "server" if plan.server_token_counts else "client",
        "tokenizer": plan.tokenizer,
        "config": config_document(cfg),
    }


def tool_version(image: str) -> Optional[str]:
    """The AIPerf version an image tag names (nvcr.io/nvidia/aiperf:0.13.0 -> 0.13.0), else None."""
    m = re.search(r":v?([0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9.+-]*)(@sha256:[a-f0-9]{64})?$", image)
    return m.group(1) if m else None


def config_document(cfg: "StackConfig") -> dict[str, Any]:
    """The validated config as stack-file keys (`servingstack:`-less camelCase, `region` for aws:region),
    every default spelled out so the report rebuilds exactly what was deployed. Unset optional keys are
    left out, and the licence rate appears under the one key that was set."""
    doc = _without_none(cfg.model_dump(mode="json", by_alias=True))
    # Who the AWS provider runs as (aws:profile / aws:assumeRoles) is not part of what was measured,
    # and it is not a servingstack: key.
    doc.pop("aws", None)
    cluster = doc.get("cluster") or {}
    if cluster.get("availabilityZoneIds"):  # pinned zones: the count is theirs (and refused beside them)
        cluster.pop("availabilityZoneCount", None)
    if "nimLicenseUsdPerGpuMonth" in doc["cost"]:
        del doc["cost"]["nimLicenseUsdPerGpuYear"]
    return doc


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
