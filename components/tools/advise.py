"""`servingstack advise`: every catalogued way to serve a model, priced and estimated, best per token first.

Candidates: every GPU instance type of the catalog x tensor-parallel size x quantization / KV-cache
dtype x serving stack, packed one replica per node or as many as the node holds. Each candidate is
written as a stack config and validated exactly as a stack file is (parse_stack_config: the fit
check, the node-fit checks, every rule), then estimated with the same code as `synth` and `cost`
(config/estimate.py), so an option's figures are the ones its stack would report. A candidate is
sized so that every request in flight has KV cache (no preemption); with targets in the workload,
nodes are added until the estimate meets them, and candidates that cannot are dropped.

The source document's decision framework is applied as rules with their reasons; they pick the
recommended stack, and the best option of that stack is the choice whose stack-file snippet is printed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import yaml

from ..config import ConfigError, parse_stack_config
from ..config.errors import did_you_mean, format_value
from ..config.estimate import Estimate, estimate
from ..config.workload import WorkloadConfig
from ..planning import catalog
from ..planning.sizing import FitError, ServingShape, _valid_tp, check_fit

STACKS = ("vllm", "triton", "nim")
#: (quantization, kvCacheDtype) each stack can be configured with: kvCacheDtype is a vLLM flag, and NIM
#: picks its own precision profile (serving.nim.modelProfile), so it is estimated as the checkpoint's.
VARIANTS = {"vllm": ((None, "auto"), (None, "fp8"), ("fp8", "auto"), ("fp8", "fp8")),
            "triton": ((None, "auto"), ("fp8", "auto")), "nim": ((None, "auto"),)}
DEFAULT_MAX_MODEL_LEN = 8192
MAX_NODES = 16
#: What the candidate stack files are validated in: a new prod cluster reachable from one CIDR.
BASE_CONFIG = {"aws:region": "us-east-1", "servingstack:environment": "prod",
               "servingstack:cluster": {"create": True, "publicAccessCidrs": ["203.0.113.0/24"]}}


@dataclass(frozen=True)
class Option:
    instance_type: str
    tensor_parallel_size: int
    replicas_per_node: int
    nodes: int
    replicas: int
    stack: str
    quantization: Optional[str]
    kv_cache_dtype: str
    max_model_len: int
    max_num_seqs: int
    estimate: Optional[Estimate] = None
    """The estimate of the option's stack config (config/estimate.py), set once it validated."""

    @property
    def monthly_usd(self) -> float:
        assert self.estimate is not None
        return self.estimate.cost.total_usd

    @property
    def usd_per_million(self) -> float:
        assert self.estimate is not None and self.estimate.performance is not None
        return self.estimate.performance.usd_per_million_output_tokens

    def as_json(self) -> dict[str, Any]:
        assert self.estimate is not None
        perf = self.estimate.performance
        assert perf is not None and self.estimate.gpu_use is not None
        return {"instanceType": self.instance_type, "tensorParallelSize": self.tensor_parallel_size,
                "replicasPerNode": self.replicas_per_node, "nodes": self.nodes, "stack": self.stack,
                "quantization": self.quantization, "kvCacheDtype": self.kv_cache_dtype,
                "monthlyUsd": round(self.monthly_usd, 2), "usdPerMillionOutputTokens": round(self.usd_per_million, 2),
                "itlExpectedMs": round(perf.replica.itl_expected_ms, 1),
                "ttftExpectedMs": round(perf.replica.ttft_expected_ms, 1), "idleGpus": self.estimate.gpu_use.idle_gpus}


def stack_snippet(o: Option, model: str, workload: WorkloadConfig) -> dict[str, Any]:
    """The stack-file keys that select this option (merge them into a stack file's `config:`)."""
    serving: dict[str, Any] = {"stack": o.stack, "model": model, "replicas": o.replicas,
                               "tensorParallelSize": o.tensor_parallel_size, "maxModelLen": o.max_model_len,
                               "maxNumSeqs": o.max_num_seqs, "spread": "hard" if o.replicas_per_node == 1 else "soft"}
    if o.quantization:
        serving["quantization"] = o.quantization
    if o.kv_cache_dtype != "auto":
        serving["vllm"] = {"kvCacheDtype": o.kv_cache_dtype}
    return {"servingstack:gpuNodePool": {"instanceType": o.instance_type, "minSize": o.nodes, "maxSize": o.nodes,
                                         "desiredSize": o.nodes},
            "servingstack:serving": serving,
            "servingstack:workload": workload.model_dump(by_alias=True, exclude_none=True)}


def _candidate(model: str, workload: WorkloadConfig, stack: str, instance: str, tp: int, quant: Optional[str],
               kv: str, max_model_len: int, max_num_seqs: int, replicas_per_node: int,
               nodes: int) -> Optional[Option]:
    o = Option(instance, tp, replicas_per_node, nodes, nodes * replicas_per_node, stack, quant, kv, max_model_len,
               max_num_seqs)
    try:
        cfg = parse_stack_config({**BASE_CONFIG, **stack_snippet(o, model, workload)})
    except ConfigError:
        return None
    e = estimate(cfg)
    return dataclasses.replace(o, estimate=e) if e.performance is not None else None


def _meets(o: Option, w: WorkloadConfig) -> bool:
    assert o.estimate is not None
    perf = o.estimate.performance
    assert perf is not None
    r = perf.replica
    return (r.queued == 0 and (w.ttft_p99_ms is None or r.ttft_expected_ms <= w.ttft_p99_ms)
            and (w.itl_p50_ms is None or r.itl_expected_ms <= w.itl_p50_ms))


def options(model: str, workload: WorkloadConfig, stacks: Sequence[str] = STACKS,
            max_monthly_usd: Optional[float] = None) -> list[Option]:
    """Every option that fits, holds the workload's requests in KV cache and meets its targets, best first."""
    arch = catalog.MODELS[model]
    per_request = workload.input_tokens + workload.output_tokens
    found: list[Option] = []
    for stack in stacks:
        if stack == "nim" and catalog.nim_image_for(model) is None:
            continue
        for instance in catalog.INSTANCE_TYPES.values():
            for tp in (t for t in range(1, instance.gpus + 1) if _valid_tp(arch, t)):
                for quant, kv in VARIANTS[stack]:
                    if quant == "fp8" and arch.native_dtype != "bf16":
                        continue
                    found += _sized(model, arch, workload, stack, instance, tp, quant, kv, per_request)
    if max_monthly_usd is not None:
        found = [o for o in found if o.monthly_usd <= max_monthly_usd]
    return sorted(found, key=lambda o: (o.usd_per_million, o.monthly_usd, o.instance_type, o.stack))


def _sized(model: str, arch: catalog.ModelArchitecture, w: WorkloadConfig, stack: str,
           instance: catalog.GpuInstanceType, tp: int, quant: Optional[str], kv: str, per_request: int) -> list[Option]:
    mml = max(per_request, min(DEFAULT_MAX_MODEL_LEN, arch.max_context))
    shape = ServingShape(1, tp, mml, 0.92, quantization=quant, kv_cache_dtype=kv)
    try:
        kv_tokens = check_fit(arch, instance, shape).kv_cache_tokens
    except FitError as exc:
        if exc.key != "serving.maxModelLen" or per_request > arch.max_context:
            return []
        mml = math.ceil(per_request / 256) * 256
        try:
            kv_tokens = check_fit(arch, instance, ServingShape(1, tp, mml, 0.92, quantization=quant,
                                                               kv_cache_dtype=kv)).kv_cache_tokens
        except FitError:
            return []
    holds = kv_tokens // per_request
    if holds < 1:
        return []
    out = []
    for per_node in sorted({1, instance.gpus // tp}):
        replicas = math.ceil(w.concurrency / holds)
        nodes = math.ceil(replicas / per_node)
        while nodes <= MAX_NODES:
            busiest = math.ceil(w.concurrency / (nodes * per_node))
            o = _candidate(model, w, stack, instance.name, tp, quant, kv, mml, max(64, min(busiest, 1024)), per_node,
                           nodes)
            if o is None:
                break
            if _meets(o, w):
                out.append(o)
                break
            nodes += 1
    return out


# ---- the source document's decision framework --------------------------------------------------

def rules(model: str, multi_model: bool, nvaie_licence: bool) -> tuple[list[str], str]:
    """(the rules that apply, each with its reason; the stack they recommend)."""
    lines = []
    has_nim = catalog.nim_image_for(model) is not None
    gated = catalog.MODELS[model].gated
    lines.append(f"open model: {model} has open weights{' (gated: accept its licence on Hugging Face)' if gated else ''}"
                 " — vLLM serves it with no licence fee (Apache 2.0) and full control: flags, speculative decoding, "
                 "experimental features (source document: 'Choose vLLM when: open-source models, budget-conscious')")
    if not has_nim:
        lines.append(f"NIM: NVIDIA publishes no NIM for {model} in servingstack's catalog — NIM serves only NGC-catalog "
                     "models ('Limited model selection'); NIM options are left out")
    recommended = "vllm"
    if multi_model:
        recommended = "triton"
        lines.append("several model types (--multi-model) — Triton serves an LLM beside embedding, reranker or "
                     "classifier models and ensembles in one server ('Choose Triton when: serving multiple model types')")
    if nvaie_licence and has_nim:
        recommended = "nim" if not multi_model else recommended
        lines.append("NVIDIA AI Enterprise licence held (--nvaie-licence) — NIM adds NVIDIA support, SLAs and signed, "
                     "scanned containers ('Choose NIM when: enterprise with NVIDIA AI Enterprise license'); its "
                     "licence still counts in the cost per token below")
    lines.append("engines: one performance model for all three — the hardware floor is the same for every engine, "
                 "and NIM on A100 runs a generic or vLLM profile; the document's 'NIM 14 % faster' is unsupported "
                 "(README 'Performance model')")
    return lines, recommended


# ---- rendering -------------------------------------------------------------------------------------

def render(model: str, workload: WorkloadConfig, found: list[Option], rule_lines: list[str], recommended: str,
           top: int = 12) -> str:
    w = workload
    lines = [f"advise: {model}, {w.concurrency} concurrent {w.input_tokens}-in / {w.output_tokens}-out requests"
             + (f", TTFT <= {w.ttft_p99_ms:g} ms" if w.ttft_p99_ms else "")
             + (f", ITL <= {w.itl_p50_ms:g} ms" if w.itl_p50_ms else "")
             + f": {len(found)} options (serving nodes and licences, on-demand {catalog.PRICES_AS_OF}; the "
               "environment's fixed costs are the same for all)", ""]
    head = (f"{'#':>3}  {'instance':<15}{'TP':>3}{'/node':>6}{'nodes':>6}  {'stack':<7}{'quant':<6}{'kv':<5}"
            f"{'$/month':>11}{'$/1M out':>10}{'ITL ms':>8}{'TTFT ms':>9}{'idle':>5}")
    lines.append(head)
    for i, o in enumerate(found[:top], 1):
        j = o.as_json()
        lines.append(f"{i:>3}  {o.instance_type:<15}{o.tensor_parallel_size:>3}{o.replicas_per_node:>6}{o.nodes:>6}  "
                     f"{o.stack:<7}{o.quantization or '-':<6}{o.kv_cache_dtype:<5}{j['monthlyUsd']:>11,.0f}"
                     f"{j['usdPerMillionOutputTokens']:>10,.2f}{j['itlExpectedMs']:>8,.0f}{j['ttftExpectedMs']:>9,.0f}"
                     f"{j['idleGpus']:>5}")
    if len(found) > top:
        lines.append(f"     ... {len(found) - top} more (--top N, or --json for all)")
    lines += ["", "rules (the source document's decision framework):", *[f"  - {r}" for r in rule_lines]]
    choice = next((o for o in found if o.stack == recommended), found[0] if found else None)
    if choice is None:
        lines += ["", "no option fits, holds the workload and meets its targets: relax the targets or "
                      "--max-monthly-usd, or shorten the requests"]
        return "\n".join(lines)
    lines += ["", f"choice: {choice.stack} on {choice.nodes} x {choice.instance_type}, {choice.replicas} replica(s) "
                  f"x TP {choice.tensor_parallel_size} ({choice.replicas_per_node} per node) — add to your stack file:",
              "", yaml.safe_dump(stack_snippet(choice, model, workload), sort_keys=False).rstrip()]
    return "\n".join(lines)


def parse_workload(text: Optional[str]) -> WorkloadConfig:
    """`inputTokens=1024,outputTokens=256,concurrency=32,ttftP99Ms=800,itlP50Ms=60` (any subset)."""
    from pydantic import ValidationError

    data: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError("workload", f"{part!r} is not key=value — use e.g. --workload "
                                          "inputTokens=1024,outputTokens=256,concurrency=32")
        data[key.strip()] = _scalar(value.strip())
    try:
        return WorkloadConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            fields = sorted(WorkloadConfig.model_json_schema(by_alias=True)["properties"])
            raise ConfigError(f"workload.{key}", f"unknown key{did_you_mean(key, fields)} — allowed keys are "
                                                 f"{', '.join(fields)}") from None
        raise ConfigError(f"workload.{key}", f"{format_value(err.get('input'))} — "
                                             f"{err['msg'].removeprefix('Value error, ')}") from None


def _scalar(text: str) -> Any:
    """A command-line value as YAML reads it (numbers as numbers), else the text itself."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else text


def check_model(model: str) -> str:
    if model not in catalog.MODELS:
        raise ConfigError("serving.model", f"{model!r} is not in the model catalog{did_you_mean(model, catalog.MODELS)}"
                                           f" — advise knows {', '.join(catalog.MODELS)}")
    return model


def check_stacks(values: Optional[Iterable[str]]) -> tuple[str, ...]:
    chosen = [s.strip() for v in (values or []) for s in v.split(",") if s.strip()]
    for s in chosen:
        if s not in STACKS:
            raise ConfigError("serving.stack", f"{s!r} is not a serving stack — use vllm, triton or nim (advise "
                                               "takes --model and --workload, not a stack file)")
    return tuple(dict.fromkeys(chosen)) or STACKS


def json_document(found: list[Option]) -> str:
    return json.dumps({"options": [o.as_json() for o in found]}, indent=2) + "\n"

