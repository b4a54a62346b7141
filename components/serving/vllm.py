"""VllmServer: vLLM's OpenAI-compatible server (`vllm/vllm-openai`)."""

import json
from typing import Any, Optional

import pulumi
from typing_extensions import NotRequired

from ..planning import catalog, engines
from ..k8s import podspec
from .common import ServingArgs, ServingComponent, defaults, hf_token_mount, node_selector, warn_if_gated_without_token


class VllmServerArgs(ServingArgs):
    kv_cache_dtype: NotRequired[str]
    """KV-cache dtype: auto (default), fp8, fp8_e4m3, fp8_e5m2."""
    load_format: NotRequired[str]
    """vLLM --load-format; default runai_streamer for s3:// models, else vLLM's default."""
    model_uri: NotRequired[pulumi.Input[str]]
    """s3://bucket/prefix/ of the weights when streaming from the model store (default: from Hugging Face)."""
    region: NotRequired[str]
    """AWS region of the model bucket (AWS_REGION for the streamer). Default "us-east-1"."""
    speculative_model: NotRequired[str]
    """Draft model id (or "[ngram]") for speculative decoding. Default unset (off)."""
    num_speculative_tokens: NotRequired[int]
    """Tokens proposed per speculative step. Default 5."""
    enable_chunked_prefill: NotRequired[bool]
    """Force chunked prefill on or off; unset keeps vLLM's default."""
    extra_args: NotRequired[list[str]]
    """Flags appended verbatim after the generated ones. Default []."""
    hf_token_secret: NotRequired[str]
    """Secret (key HF_TOKEN) for gated Hugging Face models; mounted as a file. Default unset (anonymous)."""
    release: NotRequired[str]
    """vLLM release the image runs (a key of planning.engines.VLLM_RELEASES); flags are spelled for it.
    Default: the version in the image tag."""


def release_of(args: VllmServerArgs) -> engines.VllmRelease:
    """The release the flags are built for (raises engines.ReleaseError when it cannot be told)."""
    return engines.vllm_release(args.get("image") or catalog.VLLM_IMAGE, args.get("release"))


def vllm_command(args: VllmServerArgs) -> list[str]:
    """The container command: the release's own (`vllm serve`), or [] for the image's ENTRYPOINT."""
    return list(release_of(args).command)


def vllm_args(args: VllmServerArgs) -> list[str]:
    """The container args for the configured release, in the reference deployment's order. Pure."""
    d = defaults(args)
    release = release_of(args)
    model = args.get("model_uri") or args["model"]
    out = [model] if release.model_positional else ["--model", model]
    out += [
        "--tensor-parallel-size", str(d["tp"]),
        "--max-model-len", str(d["max_model_len"]),
        "--gpu-memory-utilization", f"{d['gpu_memory_utilization']:g}",
        "--enable-prefix-caching" if d["enable_prefix_caching"] else release.prefix_caching_off,
        "--max-num-seqs", str(d["max_num_seqs"]),
        "--dtype", d["dtype"],
    ]
    if args.get("model_uri") or args.get("served_model_name"):
        out += ["--served-model-name", d["served_model_name"]]
    if d["quantization"]:
        out += ["--quantization", d["quantization"]]
    if args.get("kv_cache_dtype", "auto") != "auto":
        out += ["--kv-cache-dtype", args["kv_cache_dtype"]]
    load_format = args.get("load_format") or ("runai_streamer" if args.get("model_uri") else None)
    if load_format:
        out += ["--load-format", load_format]
    if args.get("speculative_model"):
        out += ["--speculative-config", json.dumps(_speculative_config(args), separators=(",", ":"))]
    if args.get("enable_chunked_prefill") is not None:
        out += [release.chunked_prefill_on if args["enable_chunked_prefill"] else release.chunked_prefill_off]
    return out + list(args.get("extra_args") or [])


def _speculative_config(args: VllmServerArgs) -> dict[str, Any]:
    n = args.get("num_speculative_tokens", 5)
    if args["speculative_model"] == "[ngram]":
        return {"method": "ngram", "num_speculative_tokens": n, "prompt_lookup_max": 4}
    return {"model": args["speculative_model"], "num_speculative_tokens": n}


def vllm_env(args: VllmServerArgs) -> list[dict]:
    """Environment of the vLLM container (HF token and S3 streamer settings come on top). Pure."""
    release = release_of(args)
    env = [
        {"name": "HOME", "value": "/cache"},
        # The pod's UID has no passwd entry: getpass.getuser() (torch's cache-dir lookup) reads these.
        {"name": "USER", "value": "vllm"},
        {"name": "LOGNAME", "value": "vllm"},
        {"name": "HF_HOME", "value": "/cache/huggingface"},
        {"name": "VLLM_CACHE_ROOT", "value": "/cache/vllm"},
        {"name": "XDG_CACHE_HOME", "value": "/cache"},
        # No usage telemetry from the serving pods (vllm/envs.py; DO_NOT_TRACK for the libraries too).
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
    ]
    if release.hf_transfer:
        env.append({"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"})
    return env


def vllm_workload(name: str, args: VllmServerArgs, labels: dict[str, str], tolerations: list[dict]) -> podspec.ServingWorkload:
    d = defaults(args)
    image = args.get("image") or catalog.VLLM_IMAGE
    env = vllm_env(args)
    volumes, mounts, token_env = hf_token_mount(args.get("hf_token_secret"))
    env += token_env
    if args.get("model_uri"):
        env += [{"name": "AWS_REGION", "value": args.get("region", "us-east-1")},
                {"name": "RUNAI_STREAMER_CONCURRENCY", "value": "16"}]
    return podspec.ServingWorkload(
        name=f"vllm-{d['model_slug']}", namespace=args["namespace"], stack="vllm", model_slug=d["model_slug"],
        image=image, container_name="vllm", command=vllm_command(args) or None, args=vllm_args(args),
        probes=podspec.Probes(ready_path="/health", live_path="/health", startup_seconds=d["startup_seconds"]),
        gpus=d["tp"], replicas=d["replicas"], cpu=d["cpu"], memory_gib=d["memory_gib"], shm_gib=d["shm_gib"],
        cache_mount_path="/cache", cache_size_gib=d["cache_size_gib"],
        service_account=args.get("service_account", "llm-server"), tolerations=tolerations,
        node_selector=node_selector(labels), env=env, extra_volumes=volumes, extra_mounts=mounts,
        hard_spread=args.get("hard_spread", False), checkov_waivers=image_waivers(image),
    )


SERVING_PULL_REASON = "IfNotPresent on purpose: re-pulling a multi-GB serving image on every start delays recovery"


def image_waivers(image: str, pull_reason: str = SERVING_PULL_REASON) -> dict[str, str]:
    """checkov waivers for a tag-pinned (not digest-pinned) image; none once a digest is used.
    `pull_reason` says why the pod pulls IfNotPresent (default: the serving pods' reason)."""
    if "@sha256:" in image:
        return {}
    return {
        "CKV_K8S_43": "pinned to a release tag; set the stack's image to an @sha256 digest to pin by content",
        "CKV_K8S_15": pull_reason,
    }


class VllmServer(ServingComponent):
    """vLLM serving one model with tensor parallelism, OpenAI-compatible on port 8000 (/v1/*),
    health on /health and Prometheus metrics on /metrics."""

    def __init__(self, name: str, args: VllmServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:VllmServer", name, opts, args)
        warn_if_gated_without_token(args, args.get("hf_token_secret"), from_store=bool(args.get("model_uri")))
        uri = pulumi.Output.from_input(args.get("model_uri") or "")
        self._register(name, args,
                       lambda labels, tols, u: vllm_workload(name, {**args, "model_uri": u} if u else args, labels, tols),
                       extra_inputs=(uri,))
