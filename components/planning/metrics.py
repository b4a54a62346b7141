"""Pure data: the Prometheus metric names each pinned engine and exporter exposes, with their source,
and the few queries the dashboards, alerts and autoscalers share. No Pulumi import.

Only names read from the pinned releases' own code (or, for NIM, NVIDIA's documentation) are listed;
a dashboard panel or alert whose metric a stack does not expose is left out for that stack rather than
pointed at a series that never exists. tests/test_observability.py holds every query the program
generates to these lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SOURCES_AS_OF = "2026-12"


@dataclass(frozen=True)
class EngineMetrics:
    """What one serving stack's metrics endpoint exposes, and which series answer each question."""

    stack: str
    release: str
    """The pinned release the names were read from."""
    source: str
    names: frozenset[str]
    """Every metric family name used anywhere (histograms without their _bucket/_sum/_count suffix)."""
    model_label: str
    """The label naming the served model on the engine's own series."""
    running: Optional[str]
    """Gauge: requests being processed."""
    waiting: Optional[str]
    """Gauge: requests queued for the engine: the autoscaling signal."""
    kv_cache_usage: Optional[str]
    """Gauge 0..1: KV-cache blocks in use."""
    preemptions: Optional[str]
    """Counter: sequences preempted (evicted from the KV cache)."""
    ttft: Optional[str]
    """Histogram (seconds): time to first token."""
    itl: Optional[str]
    """Histogram (seconds): time per output token (inter-token latency)."""
    e2e: Optional[str]
    """Histogram (seconds): end-to-end request latency."""
    prompt_tokens: Optional[str]
    generation_tokens: Optional[str]
    requests_ok: Optional[str]
    """Counter of successfully finished requests."""
    requests_failed: Optional[str]
    """Counter of failed requests (None when the engine exposes none)."""
    prefix_cache_queries: Optional[str] = None
    prefix_cache_hits: Optional[str] = None
    queue_note: str = ""
    """What the autoscaling signal means for this engine, where it is not plain vLLM's queue."""


VLLM = EngineMetrics(
    stack="vllm", release="vllm/vllm-openai:v0.8.4",
    source=("vllm 0.8.4 wheel: vllm/v1/metrics/loggers.py PrometheusStatLogger (the V1 engine, the default in "
            "0.8.x: envs.py VLLM_USE_V1 defaults to 1; labels model_name, engine); HTTP counters from "
            "prometheus_fastapi_instrumentator mounted in vllm/entrypoints/openai/api_server.py (http_requests_total "
            "{handler,method,status=2xx|4xx|5xx})"),
    names=frozenset({
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc",
        "vllm:gpu_prefix_cache_queries", "vllm:gpu_prefix_cache_hits", "vllm:num_preemptions_total",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
        "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds",
        "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds", "http_requests_total",
    }),
    model_label="model_name",
    running="vllm:num_requests_running", waiting="vllm:num_requests_waiting",
    kv_cache_usage="vllm:gpu_cache_usage_perc", preemptions="vllm:num_preemptions_total",
    ttft="vllm:time_to_first_token_seconds", itl="vllm:time_per_output_token_seconds",
    e2e="vllm:e2e_request_latency_seconds", prompt_tokens="vllm:prompt_tokens_total",
    generation_tokens="vllm:generation_tokens_total", requests_ok="vllm:request_success_total",
    requests_failed="http_requests_total", prefix_cache_queries="vllm:gpu_prefix_cache_queries",
    prefix_cache_hits="vllm:gpu_prefix_cache_hits",
)

TRITON = EngineMetrics(
    stack="triton", release="nvcr.io/nvidia/tritonserver:24.08-vllm-python-py3",
    source=("triton-inference-server/core r24.08 src/metrics.cc (nv_inference_*; labels model, version); "
            "triton-inference-server/vllm_backend r24.08 src/utils/metrics.py (the only vllm:* families the 24.08 "
            "backend reports: prompt/generation tokens, time to first token, time per output token; needs "
            "REPORT_CUSTOM_METRICS \"yes\" and disable_log_stats false, src/model.py)"),
    names=frozenset({
        "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
        "nv_inference_pending_request_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds",
        "vllm:time_per_output_token_seconds",
    }),
    model_label="model",
    running=None, waiting="nv_inference_pending_request_count",
    kv_cache_usage=None, preemptions=None,
    ttft="vllm:time_to_first_token_seconds", itl="vllm:time_per_output_token_seconds", e2e=None,
    prompt_tokens="vllm:prompt_tokens_total", generation_tokens="vllm:generation_tokens_total",
    requests_ok="nv_inference_request_success", requests_failed="nv_inference_request_failure",
    queue_note=("Triton's pending-request gauge counts requests its scheduler holds before the backend takes them; "
                "the 24.08 vLLM backend's execute() hands every request to the engine at once (src/model.py), so "
                "the gauge stays near 0 until the backend stops taking requests, and the backend reports no KV-cache "
                "or engine-queue metric: the Triton stack scales late and has no KV-cache alert"),
)

NIM = EngineMetrics(
    stack="nim", release="nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.0",
    source=("NVIDIA NIM for LLMs documentation, 'Observability' (docs.nvidia.com/nim/large-language-models/latest/"
            "observability.html; the same table since 24.05): metrics on :8000/v1/metrics, unprefixed, label "
            "model_name; no error counter and no prefix-cache counter are documented"),
    names=frozenset({
        "num_requests_running", "num_requests_waiting", "num_request_max", "gpu_cache_usage_perc",
        "prompt_tokens_total", "generation_tokens_total", "time_to_first_token_seconds",
        "time_per_output_token_seconds", "e2e_request_latency_seconds", "request_prompt_tokens",
        "request_generation_tokens",
    }),
    model_label="model_name",
    running="num_requests_running", waiting="num_requests_waiting", kv_cache_usage="gpu_cache_usage_perc",
    preemptions=None, ttft="time_to_first_token_seconds", itl="time_per_output_token_seconds",
    e2e="e2e_request_latency_seconds", prompt_tokens="prompt_tokens_total",
    generation_tokens="generation_tokens_total", requests_ok=None, requests_failed=None,
)

ENGINES: dict[str, EngineMetrics] = {m.stack: m for m in (VLLM, TRITON, NIM)}

#: The DCGM exporter's default counters: the dcgm-exporter chart 4.8.2 ships them in its
#: exporter-metrics-config-map (templates/metrics-configmap.yaml, mounted over
#: /etc/dcgm-exporter/default-counters.csv); tests read the rendered ConfigMap to hold these to it.
DCGM_SOURCE = "dcgm-exporter chart 4.8.2 templates/metrics-configmap.yaml (default counters, tag 4.5.3-4.8.2)"
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"
DCGM_TEMP = "DCGM_FI_DEV_GPU_TEMP"
DCGM_XID = "DCGM_FI_DEV_XID_ERRORS"
DCGM_NAMES = frozenset({DCGM_GPU_UTIL, DCGM_FB_USED, DCGM_FB_FREE, DCGM_POWER, DCGM_TEMP, DCGM_XID})

#: kube-state-metrics 8.4.0 (kube-prometheus-stack 88.5.3's subchart) series the alerts use.
KSM_SOURCE = "kube-state-metrics v2 docs/metrics/workload/deployment-metrics.md, cluster/node-metrics.md"
KSM_NAMES = frozenset({"kube_deployment_spec_replicas", "kube_deployment_status_replicas_available",
                       "kube_node_status_condition"})


def selector(namespace: str, service: str, extra: str = "") -> str:
    """PromQL label matchers for one serving stack's series: its namespace and Service (the
    ServiceMonitor's scrape sets `namespace` and `service` on every series)."""
    parts = [f'namespace="{namespace}"', f'service="{service}"']
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def queue_query(stack: str, namespace: str, service: str) -> str:
    """The autoscaling signal: requests waiting for the engine, summed over the replicas."""
    m = ENGINES[stack]
    assert m.waiting is not None
    return f"sum({m.waiting}{selector(namespace, service)})"


def activity_query(stack: str, namespace: str, service: str) -> str:
    """Requests in flight (running + waiting; Triton: requests finished in the last 5 minutes +
    pending): non-zero while a replica serves anything, so scale-to-zero waits for real idleness."""
    m = ENGINES[stack]
    sel = selector(namespace, service)
    busy = f"sum({m.running}{sel})" if m.running else f"sum(increase({m.requests_ok}{sel}[5m]))"
    return f"{busy} + {queue_query(stack, namespace, service)}"


def quantile_query(metric: str, q: float, namespace: str, service: str, window: str = "5m") -> str:
    """A latency quantile over every replica from a histogram family."""
    return (f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{selector(namespace, service)}[{window}])))")
