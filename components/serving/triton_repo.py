"""Pure: Triton model repositories for LLMs on the vLLM backend, generated from typed settings.

A repository is a mapping of relative key -> file content (`Repository`); models are built one at a
time and merged, so a repository of several models is the merge of single-model ones.

Layout of one vLLM-backend model (keys under the repository prefix):
    <model_name>/config.pbtxt     backend "vllm", one KIND_MODEL instance (tensor parallelism > 1
                                  requires KIND_MODEL; KIND_GPU errors)
    <model_name>/1/model.json     vLLM AsyncEngineArgs of the vLLM release the image bundles
                                  (tests check every key against that release's EngineArgs fields)

`repository_hash` is put on the pod template: any change to any file rolls the pods, instead of
relying on poll mode to load a second copy of the model beside the first.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Optional

Repository = dict[str, str]
"""Relative key (e.g. "llm/1/model.json") -> file content."""

#: The r24.08 vLLM backend (src/model.py) enables vllm:* metrics only when this is "yes".
REPORT_CUSTOM_METRICS_ON = "yes"


def config_pbtxt(model_name: str, report_metrics: bool = True) -> str:
    lines = [
        f'name: "{model_name}"',
        'backend: "vllm"',
        "instance_group [",
        "  {",
        "    count: 1",
        "    kind: KIND_MODEL",
        "  }",
        "]",
    ]
    if report_metrics:
        # vLLM engine metrics (vllm:*) on Triton's metrics port 8002.
        lines += [
            "parameters: {",
            '  key: "REPORT_CUSTOM_METRICS"',
            f'  value: {{ string_value: "{REPORT_CUSTOM_METRICS_ON}" }}',
            "}",
        ]
    return "\n".join(lines) + "\n"


def engine_args(model: str, tensor_parallel_size: int, max_model_len: int, gpu_memory_utilization: float,
                max_num_seqs: int, enable_prefix_caching: bool, dtype: str,
                quantization: Optional[str] = None) -> dict[str, Any]:
    """vLLM engine arguments for the backend (AsyncEngineArgs field names)."""
    engine: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_seqs": max_num_seqs,
        "enable_prefix_caching": enable_prefix_caching,
        "dtype": dtype,
        "disable_log_requests": True,
        "disable_log_stats": False,
    }
    if tensor_parallel_size > 1:
        # vLLM 0.5.3.post1 picks the "mp" executor for one node; Triton cannot stop its workers, so
        # unload, reload and shutdown hang (vllm_backend #47; r24.08 L0_multi_gpu forces "ray").
        engine["distributed_executor_backend"] = "ray"
    if quantization:
        engine["quantization"] = quantization
    return engine


def model_json(engine: Mapping[str, Any]) -> str:
    return json.dumps(dict(engine), indent=2, sort_keys=False) + "\n"


def vllm_model(model_name: str, engine: Mapping[str, Any], report_metrics: bool = True) -> Repository:
    """One vLLM-backend model: its config.pbtxt and version 1's model.json."""
    return {
        f"{model_name}/config.pbtxt": config_pbtxt(model_name, report_metrics),
        f"{model_name}/1/model.json": model_json(engine),
    }


def merge(*repositories: Repository) -> Repository:
    """One repository of several models; two models may not write the same key."""
    merged: Repository = {}
    for repo in repositories:
        clash = merged.keys() & repo.keys()
        if clash:
            raise ValueError(f"two models write {sorted(clash)[0]} — give every model its own name")
        merged.update(repo)
    return merged


def repository_files(model_name: str, **engine: Any) -> Repository:
    """The one-model repository for `engine_args(**engine)`."""
    return vllm_model(model_name, engine_args(**engine))


def repository_hash(repo: Repository) -> str:
    """SHA-256 over every key and content, in key order: equal iff the repositories are equal."""
    digest = hashlib.sha256()
    for key in sorted(repo):
        digest.update(key.encode() + b"\0" + repo[key].encode() + b"\0")
    return digest.hexdigest()
