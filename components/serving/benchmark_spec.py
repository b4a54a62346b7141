"""Pure builders of the benchmark Job: the load generator's arguments, the uploader's script and the
ServiceAccount, ConfigMap and Job manifests (dicts). No Pulumi.

One pod per run: an init container per sweep point runs `aiperf profile` against the environment's
Service (init containers run one after another, each to completion), writing the tool's own files to
`/results/c<concurrency>/`; then the `upload` container copies `/results` and the run's metadata file
to `s3://<model store>/benchmarks/<stack>/<UTC timestamp>/` with the Job's own role.
"""

from __future__ import annotations

import json
import shlex
from typing import Optional

from ..config.benchmark import METADATA_FILE, SERVICE_ACCOUNT, BenchmarkPlan, BenchmarkPoint, FIRST_WAIT_SECONDS, \
    LATER_WAIT_SECONDS
from ..k8s.podspec import container_security_context, pod_security_context
from .common import hf_token_mount
from .vllm import image_waivers

RUN_AS = 1000  # AIPerf's own Kubernetes pods run its image as 1000:1000 (aiperf kubernetes/jobset_helpers.py)
RESULTS_DIR = "/results"
CONFIG_DIR = "/config"
RANDOM_SEED = 42

#: Triton's generate extension, driven by AIPerf's template endpoint: top-level keys that name model
#: inputs become input tensors (`stream` and `exclude_input_in_output` are the vLLM backend's), the
#: `parameters` object becomes request parameters, which the vLLM backend turns into SamplingParams
#: (vllm_backend r24.08 src/model.py; server docs/protocol/extension_generate.md). The backend streams
#: text deltas, one SSE event per step, with no token usage: output tokens are counted by the tokenizer.
TRITON_PAYLOAD = ('{"text_input": {{ text|tojson }}, "stream": true, "exclude_input_in_output": true, '
                  '"parameters": {"max_tokens": {{ max_tokens }}, "ignore_eos": true, "temperature": 0}}')


def extra_inputs(plan: BenchmarkPlan) -> dict:
    """What every request adds: ignore_eos and greedy sampling (protocol §7.4), or Triton's payload."""
    if plan.endpoint_type == "template":
        return {"payload_template": TRITON_PAYLOAD, "response_field": "text_output"}
    return {"ignore_eos": True, "temperature": 0}


def aiperf_args(plan: BenchmarkPlan, point: BenchmarkPoint, artifact_dir: str, *, url: Optional[str] = None,
                tokenizer: Optional[str] = None, wait_seconds: Optional[int] = None,
                server_metrics_url: Optional[str] = None) -> list[str]:
    """`aiperf profile` arguments for one sweep point (the Job's; a test passes its loopback server
    and a local tokenizer through `url`/`tokenizer` and keeps everything else)."""
    args = [
        "profile",
        "--model", plan.model_name,
        "--tokenizer", tokenizer or plan.tokenizer,
        "--url", url or plan.endpoint,
        "--endpoint-type", plan.endpoint_type,
        *(["--custom-endpoint", plan.custom_path] if plan.custom_path else []),
        "--extra-inputs", json.dumps(extra_inputs(plan), separators=(",", ":")),
        "--streaming",
        "--concurrency", str(point.concurrency),
        "--request-count", str(point.requests),
        "--warmup-request-count", str(point.warmup_requests),
        "--isl", str(plan.input_tokens), "--isl-stddev", "0",
        "--osl", str(plan.output_tokens), "--osl-stddev", "0",
        *(["--use-server-token-count"] if plan.server_token_counts else []),
        "--random-seed", str(RANDOM_SEED),
        "--no-gpu-telemetry",
        "--ui-type", "none",
        "--artifact-dir", artifact_dir,
    ]
    if wait_seconds is None:
        wait_seconds = FIRST_WAIT_SECONDS if point == plan.points[0] else LATER_WAIT_SECONDS
    if wait_seconds:
        args += ["--wait-for-model-timeout", str(wait_seconds)]
    metrics = server_metrics_url if server_metrics_url is not None else plan.server_metrics_url
    if metrics:
        args += ["--server-metrics", metrics]
    return args


def upload_script() -> str:
    """The upload container's shell: the metadata beside the tool's files, one recursive copy under
    benchmarks/<stack>/<UTC timestamp>/ (the time the upload starts, after the last point)."""
    return "\n".join([
        "set -eu",
        'ts="$(date -u +%Y%m%dT%H%M%SZ)"',
        f'cp {CONFIG_DIR}/{METADATA_FILE} {RESULTS_DIR}/{METADATA_FILE}',
        'dest="s3://${BUCKET}/${PREFIX}${ts}/"',
        f'aws s3 cp {RESULTS_DIR} "$dest" --recursive --only-show-errors',
        'echo "benchmark results: $dest"',
        "",
    ])


def labels(plan: BenchmarkPlan) -> dict[str, str]:
    return {"app.kubernetes.io/name": "aiperf", "app.kubernetes.io/component": "benchmark",
            "app.kubernetes.io/part-of": "servingstack", "servingstack.io/run-id": plan.run_id}


def service_account(plan: BenchmarkPlan, annotations: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": plan.namespace, "labels": labels(plan),
                     **({"annotations": annotations} if annotations else {})},
        "automountServiceAccountToken": False,
    }


def config_map(plan: BenchmarkPlan, metadata: dict) -> dict:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": plan.job_name, "namespace": plan.namespace, "labels": labels(plan)},
        "data": {METADATA_FILE: json.dumps(metadata, indent=2, sort_keys=True) + "\n"},
    }


def network_policy(plan: BenchmarkPlan) -> dict:
    """The benchmark pod serves nothing: no ingress at all. Egress stays open (the Service, S3, STS and
    the tokenizer's hub, none of them at addresses a policy could name)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": plan.job_name, "namespace": plan.namespace, "labels": labels(plan)},
        "spec": {"podSelector": {"matchLabels": labels(plan)}, "policyTypes": ["Ingress"], "ingress": []},
    }


def _resources(plan: BenchmarkPlan) -> dict:
    cpu = plan.cpu
    half = cpu / 2
    fmt = lambda c: str(int(c)) if float(c).is_integer() else f"{int(c * 1000)}m"  # noqa: E731
    return {"requests": {"cpu": fmt(half), "memory": f"{plan.memory_gib}Gi", "ephemeral-storage": "2Gi"},
            "limits": {"cpu": fmt(cpu), "memory": f"{plan.memory_gib}Gi", "ephemeral-storage": "20Gi"}}


def job(plan: BenchmarkPlan, bucket: str, region: str, hf_token_secret: Optional[str] = None) -> dict:
    """The Job: restricted security context everywhere, no GPU, no service-account token, the
    serving namespace (its NetworkPolicy admits the namespace's own pods)."""
    token_volumes, token_mounts, token_env = hf_token_mount(hf_token_secret)
    env = [{"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"},
           {"name": "HF_HOME", "value": "/tmp/huggingface"}, {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
           *token_env]
    mounts = [{"name": "results", "mountPath": RESULTS_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    points = [{
        "name": f"concurrency-{p.concurrency}",
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["aiperf"],
        "args": aiperf_args(plan, p, f"{RESULTS_DIR}/{p.directory}"),
        "env": env,
        "resources": _resources(plan),
        "securityContext": container_security_context(),
        "volumeMounts": [*mounts, *token_mounts],
    } for p in plan.points]
    upload = {
        "name": "upload",
        "image": plan.uploader_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", upload_script()],
        "env": [{"name": "BUCKET", "value": bucket}, {"name": "PREFIX", "value": plan.results_prefix},
                {"name": "AWS_REGION", "value": region}, {"name": "AWS_DEFAULT_REGION", "value": region},
                {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"}, {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [*mounts, {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    # checkov asks no probes of Jobs; the images are tag-pinned unless a digest is configured.
    pull = ("IfNotPresent: the tool images are tag-pinned and the same for every sweep point, so a node "
            "pulls them once; set digests to pin by content")
    waivers = {**image_waivers(plan.image, pull), **image_waivers(plan.uploader_image, pull),
               "CKV_K8S_40": "AIPerf's own pods run its image as 1000:1000 (aiperf kubernetes/jobset_helpers.py)"}
    annotations = {"pulumi.com/skipAwait": "true",
                   **{f"checkov.io/skip{i}": f"{k}={v}" for i, (k, v) in enumerate(sorted(waivers.items()), 1)}}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": plan.job_name, "namespace": plan.namespace, "labels": labels(plan),
                     "annotations": annotations},
        "spec": {
            "backoffLimit": 0,  # a failed run is read from its logs, not repeated against the endpoint
            "activeDeadlineSeconds": plan.deadline_seconds,
            "template": {
                "metadata": {"labels": labels(plan)},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "securityContext": pod_security_context(RUN_AS),
                    "initContainers": points,
                    "containers": [upload],
                    "volumes": [
                        {"name": "results", "emptyDir": {"sizeLimit": "10Gi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}},
                        {"name": "config", "configMap": {"name": plan.job_name}},
                        *token_volumes,
                    ],
                },
            },
        },
    }


def shell_words(args: list[str]) -> str:
    """The arguments as one shell command line (for logs and the README)."""
    return " ".join(shlex.quote(a) for a in args)
